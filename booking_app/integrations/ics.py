"""iCalendar (RFC 5545 / iTIP RFC 5546) files: one booking as an invitation or a
cancellation (email attachment), and calendar feeds (subscription URLs).

Plain values in, bytes out: the `icalendar` objects stay in this module.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//Booking platform//booking_app//EN"

METHOD_REQUEST = "REQUEST"
METHOD_CANCEL = "CANCEL"
METHOD_PUBLISH = "PUBLISH"

STATUS_CONFIRMED = "CONFIRMED"
STATUS_TENTATIVE = "TENTATIVE"
STATUS_CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""


@dataclass(frozen=True)
class IcsEvent:
    uid: str
    start: dt.datetime  # aware
    end: dt.datetime  # aware
    summary: str
    sequence: int = 0
    status: str = STATUS_CONFIRMED
    description: str = ""
    location: str = ""
    url: str | None = None
    organizer: Person | None = None
    attendees: tuple[Person, ...] = ()


def booking_uid(reference: str, public_url: str) -> str:
    """Stable UID of a booking: the same for its invitation, updates, cancellation and feed entry."""
    host = urlsplit(public_url).hostname or "localhost"
    return f"booking-{reference}@{host}"


def person_from_address(address: str) -> Person:
    """'Name <mail@host>' or 'mail@host' → Person."""
    name, email = parseaddr(address)
    return Person(email=email or address, name=name)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime in a calendar event")
    return value.astimezone(dt.timezone.utc)


def _cal_address(person: Person, **params: str) -> vCalAddress:
    addr = vCalAddress(f"mailto:{person.email}")
    if person.name:
        addr.params["cn"] = vText(person.name)
    for key, value in params.items():
        addr.params[key] = vText(value)
    return addr


def _vevent(event: IcsEvent, *, stamp: dt.datetime, method: str | None) -> Event:
    ve = Event()
    ve.add("uid", event.uid)
    ve.add("dtstamp", _utc(stamp))
    ve.add("dtstart", _utc(event.start))
    ve.add("dtend", _utc(event.end))
    ve.add("sequence", int(event.sequence))
    ve.add("summary", event.summary)
    status = STATUS_CANCELLED if method == METHOD_CANCEL else event.status
    ve.add("status", status)
    if event.description:
        ve.add("description", event.description)
    if event.location:
        ve.add("location", event.location)
    if event.url:
        ve.add("url", event.url)
    if event.organizer is not None:
        ve.add("organizer", _cal_address(event.organizer))
    for attendee in event.attendees:
        ve.add("attendee", _cal_address(attendee, role="REQ-PARTICIPANT", partstat="ACCEPTED", rsvp="FALSE"))
    ve.add("transp", "TRANSPARENT" if status == STATUS_CANCELLED else "OPAQUE")
    return ve


def _calendar(method: str | None, name: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    return cal


def invitation(event: IcsEvent, *, method: str = METHOD_REQUEST, stamp: dt.datetime | None = None) -> bytes:
    """A one-event iTIP message: METHOD:REQUEST (new or changed) or METHOD:CANCEL."""
    if method not in (METHOD_REQUEST, METHOD_CANCEL, METHOD_PUBLISH):
        raise ValueError(f"unsupported iTIP method {method}")
    cal = _calendar(method)
    cal.add_component(_vevent(event, stamp=stamp or dt.datetime.now(dt.timezone.utc), method=method))
    return cal.to_ical()


def feed(events: Iterable[IcsEvent], *, name: str, stamp: dt.datetime | None = None) -> bytes:
    """A subscription calendar (no METHOD): what calendar apps poll from a feed URL."""
    cal = _calendar(None, name=name)
    cal.add("x-published-ttl", "PT1H")
    cal.add("refresh-interval", dt.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    now = stamp or dt.datetime.now(dt.timezone.utc)
    for event in events:
        cal.add_component(_vevent(event, stamp=now, method=None))
    return cal.to_ical()

