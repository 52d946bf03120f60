"""Typed domain errors. Messages are msgids, translated at the edge (API/UI) in the
caller's locale; `params` fill their `{placeholders}`."""
from __future__ import annotations

from typing import Any

from booking_app.i18n import N_, translate


class ServiceError(Exception):
    code = "error"
    status = 400
    default_message = N_("Something went wrong.")

    def __init__(self, message: str | None = None, /, *, field: str | None = None, **params: Any) -> None:
        self.message = message or self.default_message
        self.field = field
        self.params = params
        super().__init__(translate(self.message, "en", **params) if params else self.message)

    def translated(self, locale: str | None = None) -> str:
        return translate(self.message, locale, **self.params)


class InvalidInput(ServiceError):
    code = "invalid_input"
    status = 422
    default_message = N_("The input is not valid.")


class NotFound(ServiceError):
    code = "not_found"
    status = 404
    default_message = N_("Not found.")


class Unauthorized(ServiceError):
    code = "unauthorized"
    status = 401
    default_message = N_("Please sign in.")


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403
    default_message = N_("You are not allowed to do that.")


class Conflict(ServiceError):
    code = "conflict"
    status = 409
    default_message = N_("That conflicts with the current state.")


class NotAvailable(Conflict):
    code = "not_available"
    status = 409
    default_message = N_("That time is no longer available.")


class RateLimited(ServiceError):
    code = "rate_limited"
    status = 429
    default_message = N_("Too many attempts. Please try again later.")

    def __init__(self, message: str | None = None, /, *, retry_after: int = 60, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after


class Busy(ServiceError):
    code = "busy"
    status = 503
    default_message = N_("The system is busy. Please try again in a moment.")

    def __init__(self, message: str | None = None, /, *, retry_after: int = 1, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after


class PaymentError(ServiceError):
    code = "payment_error"
    status = 502
    default_message = N_("The payment provider could not be reached. Please try again.")
