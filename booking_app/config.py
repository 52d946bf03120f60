"""Every knob of the application, read from the environment (and a `.env` file).

One `Settings` object, created once per process by `get_settings()`. Safe local defaults:
SQLite file, console email/SMS, Stripe off (pay on site only), no Redis.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import zoneinfo
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-insecure-development-secret"
SUPPORTED_LOCALES = ("en", "es", "fr", "de", "ar", "it", "pt_BR", "nl", "pl", "tr")
RTL_LOCALES = frozenset({"ar"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- core -----------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    secret_key: str = DEFAULT_SECRET_KEY
    database_url: str = "sqlite:///booking.db"
    redis_url: str | None = None
    # with REDIS_URL set, `reflex run` waits this long for Redis to answer at start-up, then
    # exits with one line naming REDIS_URL and its address (the UI keeps every tab's state
    # there); the REST API alone starts without it (redis_check.py, docs/operations.md)
    redis_startup_wait_seconds: float = Field(10.0, ge=0, le=300)
    # the address users reach (scheme://host[:port], no path). Unset: `public_url` follows the
    # served port on localhost for links, and CORS/the event socket accept the same origin as
    # the request's Host (see api/security.py); set, only this origin (+ CORS_ALLOWED_ORIGINS)
    public_url_configured: str | None = Field(None, validation_alias=AliasChoices("public_url", "PUBLIC_URL"))
    default_locale: str = "en"
    default_timezone: str = "UTC"
    app_name: str = "Booking"
    log_level: str = "INFO"

    # --- observability (booking_app/logs.py, api/requestlog.py, telemetry.py) ---------------
    # log lines as JSON objects (one per line, for a log shipper) or text; unset: json in
    # production, text elsewhere (see `log_format_resolved`)
    log_format: Literal["json", "text"] | None = None
    # OpenTelemetry traces (requests, DB statements, jobs) over OTLP/HTTP to this collector
    # base URL (…/v1/traces is appended); unset or empty: tracing off, nothing of OpenTelemetry loaded
    otel_exporter_otlp_endpoint: str | None = Field(None, max_length=2000, pattern=r"^(https?://\S+)?$")
    otel_service_name: str = Field("booking-app", min_length=1, max_length=200)

    # --- database pool (PostgreSQL) -------------------------------------------------------
    # a fixed pool by default: under sustained load an overflow connection is closed on its
    # return and opened again moments later — a new PostgreSQL backend and re-prepared
    # statements each time (measured: +20-30 % of the database's CPU per booking)
    db_pool_size: int = Field(8, ge=1, le=200)
    db_max_overflow: int = Field(0, ge=0, le=200)
    db_pool_timeout: float = Field(5.0, gt=0)
    db_lock_timeout_ms: int = Field(3000, ge=10, le=60000)
    # database outages: seconds a new PostgreSQL connection may take before the
    # request fails (a server that is down answers at once; this bounds a network that drops
    # packets), and the Retry-After of the 503 a request gets when the database is unreachable
    db_connect_timeout_seconds: int = Field(5, ge=1, le=60)
    db_unavailable_retry_after_seconds: int = Field(2, ge=1, le=60)
    # `python -m booking_app backup/restore` on PostgreSQL: the folder of pg_dump/pg_restore
    # (empty: the installed client matching the server's major version, else the one on PATH)
    pg_bin_dir: str = ""
    # overload and shutdown (api/loadshed.py): in-flight HTTP requests per process beyond which
    # the API answers 503 + Retry-After at once (0 = no cap); seconds /api/ready answers 503
    # after SIGTERM before the server stops accepting (lets a proxy drain this process)
    max_inflight_requests: int = Field(64, ge=0, le=100000)
    shutdown_drain_seconds: float = Field(0.0, ge=0, le=300)
    # threads for the API's sync routes per process (0 = DB_POOL_SIZE + DB_MAX_OVERFLOW + 2)
    api_threads: int = Field(0, ge=0, le=1000)
    # request body cap (api/bodylimit.py): larger bodies get 413 before anything reads them —
    # by Content-Length, or while a chunked body streams in. 1 MiB is far above any request
    # of this API (a full week of opening hours is ~10 kB; Stripe events are a few kB)
    max_request_body_bytes: int = Field(1024 * 1024, ge=64 * 1024, le=100 * 1024 * 1024)
    sqlite_busy_timeout_ms: int = Field(5000, ge=10, le=120000)

    # --- auth -----------------------------------------------------------------------------
    token_ttl_minutes: int = Field(60 * 24, ge=1)
    # seconds a token lookup may be served from memory (services/authcache.py; 0 = off)
    auth_cache_seconds: float = Field(5.0, ge=0, le=300)
    # seconds a browser has, after signing in, to trade its single-use code for the HttpOnly
    # session cookie (services/browser_sessions.py): a round trip, so short
    browser_handoff_seconds: int = Field(60, ge=5, le=600)
    password_reset_ttl_minutes: int = Field(60, ge=1)
    # two-factor sign-in and sessions (services/mfa.py, services/sessions.py). SECRET_KEY_PREVIOUS:
    # the key before a rotation; TOTP secrets sealed with it still open (and are sealed again
    # with SECRET_KEY when used). REQUIRE_2FA_FOR: roles that must enrol (e.g. "admin,provider")
    secret_key_previous: str | None = None
    require_2fa_for: str = Field("", max_length=100, pattern=r"^[a-z, ]*$")
    mfa_challenge_minutes: int = Field(5, ge=1, le=60)
    # admin and provider sessions end after this long without a request, and this long after
    # sign-in whatever happens (customers keep TOKEN_TTL_MINUTES)
    staff_session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    staff_session_absolute_hours: int = Field(12, ge=1, le=24 * 30)
    # sensitive actions (role change, deactivation, 2FA reset, a refund above
    # REAUTH_REFUND_ABOVE_CENTS, a price change) need the password or a code within this long
    reauth_minutes: int = Field(5, ge=1, le=24 * 60)
    reauth_refund_above_cents: int = Field(10000, ge=0)

    # --- client address and throttling (services/clientip.py, services/ratelimit.py) -------
    # proxies whose forwarding header is believed: comma-separated IPs/CIDRs; empty = none,
    # the client is the connection's peer. TRUSTED_PROXY_HEADER: the one header they write
    trusted_proxies: str = ""
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    rate_limits_enabled: bool = True  # false switches every limit below off
    # sign-in failures of one client (IP) on one account that cost nothing; after them each
    # attempt waits LOGIN_DELAY_BASE_SECONDS·2^k after the last failure, up to the max
    login_max_failures: int = Field(5, ge=1, le=1000)
    login_delay_base_seconds: int = Field(2, ge=1, le=3600)
    login_delay_max_seconds: int = Field(900, ge=1, le=86400)
    # failures on one account from all clients before new clients wait too (growing, capped
    # short so an attack slows guessing without locking the owner out); a client that signed
    # in to the account within LOGIN_KNOWN_CLIENT_DAYS skips this account-wide wait
    login_account_max_failures: int = Field(10, ge=1, le=100000)
    login_account_delay_max_seconds: int = Field(60, ge=1, le=3600)
    login_known_client_days: int = Field(30, ge=0, le=365)
    # failures older than this are forgotten
    login_failure_window_minutes: int = Field(60, ge=1, le=24 * 60)
    # wrong current passwords (changing email or password, deleting the account) per account
    # before growing waits (same base, up to the max)
    current_password_max_failures: int = Field(5, ge=1, le=1000)
    current_password_delay_max_seconds: int = Field(900, ge=1, le=86400)
    # requests per hour: password reset links per email address and per IP; sign-ups per IP
    # and per email address
    password_reset_max_requests: int = Field(5, ge=1, le=100000)
    password_reset_max_per_ip: int = Field(20, ge=1, le=100000)
    register_max_per_ip: int = Field(20, ge=1, le=100000)
    register_max_per_email: int = Field(5, ge=1, le=100000)

    # --- browser hardening (api/security.py) ------------------------------------------------
    # origins allowed to frame the pages (comma-separated, e.g. https://partner.example); empty:
    # none (frame-ancestors 'none'). Other origins besides PUBLIC_URL's allowed to call the API
    # from a browser with credentials (CORS) and to open the event socket (comma-separated)
    frame_ancestors: str = Field("", max_length=4000)
    cors_allowed_origins: str = Field("", max_length=4000)
    # origins allowed to frame the booking widget (/embed pages only) of every provider, in
    # addition to each provider's own list (comma-separated exact origins; docs/embed.md)
    embed_allowed_origins: str = Field("", max_length=4000)

    # --- bookings -------------------------------------------------------------------------
    hold_minutes: int = Field(15, ge=1, le=24 * 60)
    # how long a waitlist offer holds the freed seats (a bookable may override it)
    waitlist_offer_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    # how long a booking awaiting the provider's approval holds its seats (a bookable may override it)
    approval_expiry_hours: int = Field(48, ge=1, le=30 * 24)
    # the most occurrences one recurring series may have (services/series.py)
    series_max_occurrences: int = Field(52, ge=1, le=366)
    default_reminder_offsets_minutes: str = "1440,60"

    # --- guests (issue 20: no hoarding by anonymous visitors) -----------------------------
    # at most this many seats per guest booking (signed-in customers: the slot's capacity)
    guest_max_quantity: int = Field(10, ge=1, le=1000)
    # active unpaid guest bookings (a pending hold not yet expired, or a confirmed booking
    # still to come that nothing was paid for) per email address and per client IP (an IPv6
    # client counts by its /64). RATE_LIMITS_ENABLED=false turns the per-IP cap off (load tests
    # come from one address); the per-email cap and GUEST_MAX_QUANTITY stay on
    guest_max_holds_per_email: int = Field(5, ge=1, le=1000)
    guest_max_holds_per_ip: int = Field(20, ge=1, le=100000)
    # how long a guest's unpaid booking holds its seats (customers: HOLD_MINUTES)
    guest_hold_minutes: int = Field(10, ge=1, le=24 * 60)
    # guest bookings (and booking requests, and manage-link requests, each counted apart)
    # per email address and per client IP within the window (off with RATE_LIMITS_ENABLED=false)
    guest_rate_per_email: int = Field(5, ge=1, le=100000)
    guest_rate_per_ip: int = Field(20, ge=1, le=100000)
    guest_rate_window_minutes: int = Field(60, ge=1, le=24 * 60)
    # true: a guest's booking holds nothing until they open the link emailed to them (valid
    # GUEST_CONFIRMATION_MINUTES); needs working email delivery (SMTP_URL / SENDGRID_API_KEY)
    guest_email_confirmation: bool = False
    guest_confirmation_minutes: int = Field(60, ge=5, le=7 * 24 * 60)
    # a guest's manage link works until this many days after the booking ends
    manage_link_ttl_days: int = Field(30, ge=1, le=3650)

    # --- payments (Stripe) ---------------------------------------------------------------
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_payment_methods: str = "card,paypal"
    # access that ends (issue 20): a webhook's signed timestamp must be within this many
    # seconds of our clock, past AND future (a captured event can't be replayed later)
    stripe_webhook_tolerance_seconds: int = Field(300, ge=10, le=3600)
    # idempotent replays of POST /api/bookings by a guest without the booking's manage token
    # (the guest's own retry after a lost answer) are answered only this long after the first
    # request; later, or for anyone else, the replay needs the manage token (else 404)
    idempotency_guest_replay_seconds: int = Field(3600, ge=0, le=24 * 3600)

    # --- email ----------------------------------------------------------------------------
    email_from: str = "Booking <no-reply@localhost>"
    smtp_url: str | None = None
    sendgrid_api_key: str | None = None
    sendgrid_api_base: str = "https://api.sendgrid.com"

    # --- SMS (Twilio) --------------------------------------------------------------------
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_api_base: str = "https://api.twilio.com"

    # --- jobs -----------------------------------------------------------------------------
    jobs_enabled: bool = True
    outbox_interval_seconds: float = Field(5.0, gt=0)
    outbox_max_attempts: int = Field(8, ge=1)

    # --- outgoing webhooks (services/webhooks.py, services/url_safety.py) -------------------
    #: allow webhook (and calendar subscription) targets on loopback, private or link-local
    #: addresses: tests and on-premises receivers only
    webhook_allow_private_targets: bool = False
    #: how long a rotated-out webhook secret still signs (both signatures are sent meanwhile)
    webhook_secret_overlap_hours: float = Field(24.0, ge=0, le=24 * 30)
    #: delivered and given-up webhook deliveries are kept this long in the log
    webhook_log_days: int = Field(30, ge=1, le=3650)
    #: how often a calendar subscription's feed is fetched again (services/calendar_sync.py)
    calendar_sync_interval_minutes: float = Field(15.0, ge=1, le=24 * 60)

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, v: str) -> str:
        if v not in SUPPORTED_LOCALES:
            raise ValueError(f"DEFAULT_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        # a list that can't be read stops the app rather than trusting nobody (or everybody)
        try:
            return ",".join(str(ipaddress.ip_network(x.strip(), strict=False)) for x in v.split(",") if x.strip())
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc

    @field_validator("default_timezone")
    @classmethod
    def _known_tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}") from exc
        return v

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, v: str) -> str:
        # Accept the URLs people paste (postgres://, postgresql://) and use psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix):]
        return v

    @field_validator("public_url_configured")
    @classmethod
    def _public_origin(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None  # empty = unset (e.g. an image built without one)
        origin = origin_of(v.strip().rstrip("/"))
        if origin is None:
            raise ValueError("PUBLIC_URL must be an http(s) address without a path, e.g. https://booking.example.com")
        return origin

    @field_validator("cors_allowed_origins", "frame_ancestors", "embed_allowed_origins")
    @classmethod
    def _origin_list(cls, v: str, info) -> str:
        # exact http(s) origins only: these values go verbatim into CORS and CSP headers
        wildcard = info.field_name == "frame_ancestors"
        out = []
        for item in (x.strip().rstrip("/") for x in v.split(",")):
            if not item:
                continue
            origin = origin_of(item.replace("://*.", "://wildcard.") if wildcard else item)
            if origin is None:
                raise ValueError(f"{info.field_name.upper()}: {item!r} is not an http(s) origin like https://example.com")
            out.append(origin.replace("://wildcard.", "://*.") if wildcard else origin)
        return ",".join(dict.fromkeys(out))

    @model_validator(mode="after")
    def _production_guard(self) -> "Settings":
        if self.environment == "production" and (
            self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32
        ):
            raise ValueError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        return self

    # --- derived --------------------------------------------------------------------------
    @property
    def public_url(self) -> str:
        """The address for links in emails, calendar files and payment returns: PUBLIC_URL, or
        when unset this machine on the port being served (`reflex run --frontend-port`, PORT)."""
        if self.public_url_configured:
            return self.public_url_configured
        port = os.environ.get("REFLEX_FRONTEND_PORT") or os.environ.get("PORT") or "3000"
        return f"http://localhost:{port}"

    @property
    def log_format_resolved(self) -> str:
        """LOG_FORMAT, or when unset json in production (for a log shipper), text elsewhere."""
        return self.log_format or ("json" if self.environment == "production" else "text")

    @property
    def public_url_is_set(self) -> bool:
        return self.public_url_configured is not None

    @property
    def cors_origins(self) -> tuple[str, ...]:
        """Origins other sites' pages may call us from: PUBLIC_URL's (when set) + CORS_ALLOWED_ORIGINS."""
        extra = [o for o in self.cors_allowed_origins.split(",") if o]
        return tuple(dict.fromkeys(([self.public_url_configured] if self.public_url_configured else []) + extra))

    @property
    def frame_ancestor_origins(self) -> tuple[str, ...]:
        return tuple(o for o in self.frame_ancestors.split(",") if o)

    @property
    def embed_origins(self) -> tuple[str, ...]:
        return tuple(o for o in self.embed_allowed_origins.split(",") if o)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def stripe_enabled(self) -> bool:
        return bool(self.stripe_secret_key)

    @property
    def online_payment_methods(self) -> list[str]:
        if not self.stripe_enabled:
            return []
        return [m.strip() for m in self.stripe_payment_methods.split(",") if m.strip()]

    @property
    def reminder_offsets(self) -> list[int]:
        return sorted(
            {int(x) for x in self.default_reminder_offsets_minutes.split(",") if x.strip()},
            reverse=True,
        )


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL without path, query or credentials, lower-cased
    and without its scheme's default port (how browsers write an Origin header); else None."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or parts.path not in ("", "/") or parts.query \
            or parts.fragment or parts.username or parts.password or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname.lower()
    if not all(c.isalnum() or c in ".-_[]:" for c in host):
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """For tests and CLI commands that change the environment."""
    get_settings.cache_clear()
