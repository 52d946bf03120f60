"""Demo data for the embedded default: three users and a few bookables of each kind."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sqlmodel import select

from booking_app import db
from booking_app.models import User
from booking_app.services import accounts, catalog
from booking_app.services.actors import Actor

DEMO_USERS = (
    # role, username, email, password, full name
    ("admin", "admin", "admin@example.com", "demo-admin-pass", "Ada Admin"),
    ("provider", "provider", "provider@example.com", "demo-provider-pass", "Pat Provider"),
    ("customer", "customer", "customer@example.com", "demo-customer-pass", "Casey Customer"),
)


@dataclass
class SeedResult:
    created: bool
    credentials: list[tuple[str, str, str]]  # role, username, password


def seed_demo(*, today: dt.date | None = None) -> SeedResult:
    """Create the demo users and bookables once; later calls change nothing."""
    creds = [(role, username, password) for role, username, _e, password, _n in DEMO_USERS]
    with db.read_session() as s:
        if s.exec(select(User).where(User.username == "admin")).first() is not None:
            return SeedResult(created=False, credentials=creds)
    users: dict[str, User] = {}
    for role, username, email, password, full_name in DEMO_USERS:
        users[role] = accounts.create_user(
            username=username, email=email, password=password, role=role, full_name=full_name
        )
    provider_id = users["provider"].id
    assert provider_id is not None
    tz_name = "Europe/Madrid"
    tz = zoneinfo.ZoneInfo(tz_name)
    today = today or dt.datetime.now(tz).date()
    specs = [
        dict(kind="room", name="Meeting room Atlas", description="Bright room for 8 people with a screen and a whiteboard.",
             location="Madrid Centro", duration_minutes=60, capacity=1, price_cents=2500, currency="EUR"),
        dict(kind="room", name="Studio Boreal", description="Quiet recording studio with acoustic treatment.",
             location="Madrid Norte", duration_minutes=120, capacity=1, price_cents=6000, currency="EUR", buffer_after_minutes=15),
        dict(kind="service", name="Haircut", description="Wash, cut and style with Pat.",
             location="Madrid Centro", duration_minutes=30, capacity=1, price_cents=0, currency="EUR", min_notice_minutes=60),
        dict(kind="service", name="Physiotherapy session", description="45-minute assessment and treatment.",
             location="Madrid Centro", duration_minutes=45, capacity=1, price_cents=4500, currency="EUR",
             buffer_after_minutes=15, cancel_cutoff_hours=24, refund_percent=50),
        dict(kind="event", name="Pottery workshop", description="Hands-on wheel throwing for beginners. Clay included.",
             location="Madrid Sur", duration_minutes=120, capacity=12, price_cents=3500, currency="EUR",
             cancel_cutoff_hours=48, refund_percent=100),
        dict(kind="event", name="City walking tour", description="Two hours through the old town with a local guide.",
             location="Madrid Centro", duration_minutes=120, capacity=20, price_cents=0, currency="EUR"),
    ]
    provider = Actor(id=provider_id, role="provider", timezone=tz_name)
    weekdays = [{"weekday": d, "start": "09:00", "end": "13:00"} for d in range(5)] + \
        [{"weekday": d, "start": "14:00", "end": "18:00"} for d in range(5)] + \
        [{"weekday": 5, "start": "10:00", "end": "14:00"}]
    for spec in specs:
        b = catalog.create_bookable(actor=provider, timezone=tz_name, **spec)
        if b.kind == "event":
            for day in range(1, 29, 3):
                local = dt.datetime.combine(today + dt.timedelta(days=day), dt.time(18, 0), tzinfo=tz)
                catalog.add_event_session(actor=provider, bookable_id=b.id, start=local)
        else:
            catalog.set_availability(actor=provider, bookable_id=b.id, weekly=weekdays, exceptions=[])
    return SeedResult(created=True, credentials=creds)
