"""All tables, imported here so that `SQLModel.metadata` knows every one of them."""
from booking_app.models.audit import AuditEvent, IdempotencyRecord
from booking_app.models.base import UTCDateTime, utcnow
from booking_app.models.booking import ACTIVE_STATUSES, Booking, BookingStatus
from booking_app.models.calendar_subscription import CalendarBusyInterval, CalendarSubscription
from booking_app.models.catalog import (
    AvailabilityException,
    AvailabilityRule,
    Bookable,
    BookableKind,
    EventSession,
)
from booking_app.models.notification import CalendarFeedToken, Notification, NotificationStatus
from booking_app.models.payment import Payment, PaymentStatus, ProcessedWebhookEvent, Refund
from booking_app.models.user import (
    AuthToken,
    BrowserSessionHandoff,
    MfaChallenge,
    MfaRecoveryCode,
    PasswordResetToken,
    RateLimitEvent,
    Role,
    User,
    UserMfa,
)
from booking_app.models.webhook import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

__all__ = [
    "ACTIVE_STATUSES", "AuditEvent", "AuthToken", "AvailabilityException", "AvailabilityRule",
    "Bookable", "BrowserSessionHandoff", "BookableKind", "Booking", "BookingStatus", "CalendarBusyInterval",
    "CalendarFeedToken", "CalendarSubscription", "EventSession",
    "IdempotencyRecord", "MfaChallenge", "MfaRecoveryCode", "Notification", "NotificationStatus", "PasswordResetToken", "Payment",
    "PaymentStatus", "ProcessedWebhookEvent", "RateLimitEvent", "Refund", "Role", "User",
    "UserMfa", "UTCDateTime", "utcnow", "WebhookDelivery", "WebhookDeliveryStatus", "WebhookEndpoint",
]
