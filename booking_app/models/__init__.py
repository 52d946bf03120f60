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
from booking_app.models.discount import DiscountCode
from booking_app.models.embed import EmbedOrigin
from booking_app.models.notification import CalendarFeedToken, Notification, NotificationStatus
from booking_app.models.payment import BookingFee, Payment, PaymentStatus, ProcessedWebhookEvent, Refund
from booking_app.models.series import BookingSeries
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
from booking_app.models.waitlist import WaitlistEntry, WaitlistStatus
from booking_app.models.webhook import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

__all__ = [
    "ACTIVE_STATUSES", "AuditEvent", "AuthToken", "AvailabilityException", "AvailabilityRule",
    "Bookable", "BrowserSessionHandoff", "BookableKind", "Booking", "BookingFee", "BookingSeries", "BookingStatus", "CalendarBusyInterval",
    "CalendarFeedToken", "CalendarSubscription", "DiscountCode", "EmbedOrigin", "EventSession",
    "IdempotencyRecord", "MfaChallenge", "MfaRecoveryCode", "Notification", "NotificationStatus", "PasswordResetToken", "Payment",
    "PaymentStatus", "ProcessedWebhookEvent", "RateLimitEvent", "Refund", "Role", "User",
    "UserMfa", "UTCDateTime", "utcnow", "WaitlistEntry", "WaitlistStatus", "WebhookDelivery", "WebhookDeliveryStatus", "WebhookEndpoint",
]
