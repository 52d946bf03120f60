"""FastAPI dependencies: who is calling (Actor), role checks, locale, client IP.

- `get_actor`: the Actor of the `Authorization: Bearer <token>` header, or `Actor.guest()`
  without one. A token that is unknown, expired or revoked (or whose user is disabled)
  is a 401 problem+json, never silently a guest. An enrolment-only token (REQUIRE_2FA_FOR,
  services/auth.py) is accepted only by the two-factor enrolment routes (ENROLMENT_PATHS)
  and sign-out; anywhere else it is a 401 `mfa_enrolment_required`. An `X-Reauth` header
  (password or code) re-authenticates the session before the route runs (a wrong one is a
  401 `reauth_required`), so that sensitive actions see a recent proof (services/sessions.py).
- `require_user`: 401 for guests. `require_role("admin", ...)`: 403 for other roles.
- `get_locale`: the user's setting, else Accept-Language, else DEFAULT_LOCALE; it also
  sets `request.state.user_locale` so that errors are translated for the user. Routes
  that resolve `get_actor` need no more for translated errors: it records a signed-in
  user's locale, and errors fall back to Accept-Language (api/errors.request_locale).

Authorization of individual objects lives in the services (they take the Actor).
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from booking_app.i18n import negotiate_locale
from booking_app.services import audit, auth, clientip, sessions
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, Unauthorized

#: the OpenAPI security scheme of `Authorization: Bearer <token>` (see api/openapi.py)
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "Access token from POST /api/users/login"}
#: where an enrolment-only token works
ENROLMENT_PATHS = frozenset({"/api/users/profile/2fa", "/api/users/profile/2fa/confirm", "/api/users/logout"})
MAX_REAUTH_HEADER = 1024
#: a sensitive route's parameter that documents `X-Reauth` (get_actor checks it before the route runs)
REAUTH_HEADER = Header(default=None, alias="X-Reauth", max_length=MAX_REAUTH_HEADER,
                       description="your password or a current code, when your sign-in is not recent")


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(auth.SESSION_INVALID)
    return token.strip()


async def get_actor(request: Request) -> Actor:
    # (the header is read here, not through a fastapi.security.HTTPBearer sub-dependency:
    # solving it cost every request ~3 % of a booking's CPU; api/openapi.py puts the
    # scheme into the OpenAPI document instead)
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    # the audit rows this request writes carry its client IP (services/audit.py)
    audit.request_ip.set(client_ip(request))
    token = _bearer_token(request)
    if token is None:
        locale = negotiate_locale(None, request.headers.get("accept-language"))
        actor = Actor.guest(locale=locale)
        request.state.token_hash = None
    else:
        # a cached lookup needs no database and no worker thread
        enrolling = request.scope["path"] in ENROLMENT_PATHS  # (request.url: a URL built per request)
        authenticated = auth.authenticate_cached(token, allow_enrolment=enrolling) \
            or await run_in_threadpool(lambda: auth.authenticate(token, allow_enrolment=enrolling))
        actor = authenticated.actor
        request.state.token_hash = authenticated.token_hash
        request.state.enrolment_only = authenticated.enrolment_only
        proof = request.headers.get("x-reauth")
        if proof:
            await run_in_threadpool(sessions.reauthenticate, actor=actor, proof=proof[:MAX_REAUTH_HEADER])
        request.state.user_locale = actor.locale
    request.state.actor = actor
    return actor


async def require_user(actor: Actor = Depends(get_actor)) -> Actor:
    if actor.is_guest:
        raise Unauthorized()
    return actor


def require_role(*roles: str) -> Callable[..., Actor]:
    """Dependency: a signed-in user whose role is one of `roles` (401 for guests, else 403)."""
    allowed = frozenset(roles)

    async def _dependency(actor: Actor = Depends(require_user)) -> Actor:
        if actor.role not in allowed:
            raise Forbidden()
        return actor

    _dependency.__name__ = f"require_role_{'_'.join(sorted(allowed))}"
    _dependency.roles = allowed  # type: ignore[attr-defined]  # api/openapi.py documents 403 by it
    return _dependency


require_admin = require_role("admin")
require_provider = require_role("provider", "admin")


async def get_locale(request: Request, actor: Actor = Depends(get_actor)) -> str:
    user_locale = actor.locale if not actor.is_guest else None
    locale = negotiate_locale(user_locale, request.headers.get("accept-language"))
    request.state.user_locale = locale
    return locale


def get_token_hash(request: Request) -> str | None:
    """SHA-256 of the bearer token of this request (after get_actor ran)."""
    return getattr(request.state, "token_hash", None)


def is_enrolment_only(request: Request) -> bool:
    """Whether this request came with an enrolment-only token (after get_actor ran)."""
    return bool(getattr(request.state, "enrolment_only", False))


def client_ip(request: Request) -> str | None:
    """The client's address: the peer, or what a proxy in TRUSTED_PROXIES forwarded
    (services/clientip.py: the same rule as the UI's event socket)."""
    return clientip.client_ip(request.client.host if request.client else None, request.headers)


__all__ = [
    "BEARER_SCHEME", "REAUTH_HEADER", "client_ip", "get_actor", "get_locale", "get_token_hash", "is_enrolment_only", "require_admin",
    "require_provider", "require_role", "require_user",
]
