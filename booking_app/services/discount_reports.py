"""The discount report (issue 26): revenue gross, discounts and net per currency, and the uses
per code, for the admin reports (API `GET /api/reports/discounts`, the admin reports page, CSV).
Kept apart from services/discounts.py so that the code rules stay below the reports module."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func
from sqlmodel import select

from booking_app import db
from booking_app.models import Booking, DiscountCode, utcnow
from booking_app.services.actors import Actor, require_admin
from booking_app.services.discounts import use_held
from booking_app.services.report_sql import as_int, make_period
from booking_app.services.reports import ADMINS_ONLY, Report


def report(*, actor: Actor, date_from: dt.date | str | None, date_to: dt.date | str | None,
           tz: str | None = None, now: dt.datetime | None = None) -> Report:
    """Bookings made in the period that still hold their price (not cancelled, no lapsed
    hold): per currency gross (list price), discounts and net (what is charged); rows: uses
    per code. Admins only."""
    require_admin(actor, ADMINS_ONLY)
    now = now or utcnow()
    period = make_period(date_from, date_to, tz or actor.timezone)
    held = and_(period.within(Booking.created_at), use_held(now))
    gross = func.sum(func.coalesce(Booking.list_price_cents, Booking.price_cents))
    with db.read_session() as s:
        totals = s.exec(select(Booking.currency, gross, func.sum(Booking.discount_cents),  # type: ignore[call-overload]
                               func.sum(Booking.price_cents), func.count(Booking.id))
                        .where(held).group_by(Booking.currency).order_by(Booking.currency)).all()
        per_code = s.exec(select(DiscountCode.id, DiscountCode.code, Booking.currency,  # type: ignore[call-overload]
                                 func.count(Booking.id), gross, func.sum(Booking.discount_cents),
                                 func.sum(Booking.price_cents))
                          .join(DiscountCode, DiscountCode.id == Booking.discount_code_id)
                          .where(held).group_by(DiscountCode.id, DiscountCode.code, Booking.currency)
                          .order_by(DiscountCode.code, Booking.currency)).all()
    rows = [{"code_id": cid, "code": code, "currency": cur, "uses": as_int(n), "gross_cents": as_int(g),
             "discount_cents": as_int(d), "net_cents": as_int(net)} for cid, code, cur, n, g, d, net in per_code]
    summary = {"totals": [{"currency": cur, "bookings": as_int(n), "gross_cents": as_int(g),
                           "discount_cents": as_int(d), "net_cents": as_int(net)} for cur, g, d, net, n in totals]}
    columns = ("code_id", "code", "currency", "uses", "gross_cents", "discount_cents", "net_cents")
    return Report("discounts", period.date_from, period.date_to, period.tz, "code", columns, rows, summary)
