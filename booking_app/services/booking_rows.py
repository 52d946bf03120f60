"""The booking hot path's first read: the bookable, its provider, the customer and the new
booking's id in one statement — on PostgreSQL with the webhook endpoints listening to the
provider and the slot check riding along — read into
plain row objects (`PlainRow`), not ORM instances. Why, and what it saved:
docs/performance.md.
"""
from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from booking_app.models import Bookable, User
from booking_app.services import availability, capacity, webhooks

class PlainRow(SimpleNamespace):
    """A plain row object with the model's attribute names: what the hot path reads rows
    into instead of building ORM instances, which cost far more CPU (docs/performance.md).
    Never added to a session."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(**values)

#: the customer's and provider's columns the hot path needs (outbox recipients, checks)
_PERSON_COLUMNS = ("id", "username", "full_name", "email", "phone", "locale", "timezone", "is_active",
                   "notify_email", "notify_sms")
_BOOKABLE_COLUMNS = tuple(c.key for c in Bookable.__table__.columns)  # type: ignore[attr-defined]


def load_bookable_and_people(s: Session, service_id: int, customer_id: int | None, start_at: dt.datetime, quantity: int,
                              now: dt.datetime) -> tuple[Bookable | None, User | None, User | None, int | None,
                                                         list[list[tuple]] | None, webhooks.Listeners | None]:
    """(bookable, its provider, the customer, the new booking's id or None, the slot
    check's rows or None, the webhook endpoints listening (webhooks.listeners) or None) in
    one round trip; Nones when the bookable is unknown. (None: the caller asks later.)

    On PostgreSQL (the connection in autocommit: `capacity.implicit_transactions`) it is one
    statement outside the booking's write transaction — reads, each statement with its own
    snapshot as in any READ COMMITTED transaction, and the booking id drawn from its
    sequence — in one round trip (inside a transaction, psycopg would first send BEGIN and
    wait for it: a round trip of its own); the rows become plain `PlainRow` objects. When this process has seen the bookable
    before, the slot check's queries (availability.slot_queries_pg, built from the fields
    seen then) ride along in the same statement (_people_sql); their rows are used only if
    those fields are unchanged in the row just read — a guess checked against the truth,
    so there is nothing to invalidate."""
    if not capacity.pipelined(s):
        row = s.exec(_people_stmt(), params={"sid": service_id, "cid": customer_id}).first()  # type: ignore[call-overload]
        if row is None:
            return None, None, None, None, None, None
        return row[0], row[1], row[2], None, None, None
    guess = _slot_fields_seen.get(service_id)
    ahead = availability.slot_queries_pg(guess, start_at, now, quantity) if guess is not None else []
    pg = s.connection().connection.driver_connection
    row = pg.execute(*people_query(service_id, customer_id, ahead), binary=True).fetchone()
    if row is None:  # (no such bookable: the caller stops here)
        return None, None, None, None, None, None
    nb, npn = len(_BOOKABLE_COLUMNS), len(_PERSON_COLUMNS)
    b = PlainRow(dict(zip(_BOOKABLE_COLUMNS, row[:nb])))
    people = [PlainRow(dict(zip(_PERSON_COLUMNS, row[i:i + npn]))) if row[i] is not None else None
              for i in (nb, nb + npn)]
    new_id, heard_by = row[nb + 2 * npn], webhooks.listeners_of(row[nb + 2 * npn + 1])
    seen = SimpleNamespace(**dict(zip(availability.SLOT_QUERY_FIELDS, _slot_fields_of(b))))
    prefetched = slot_rows(row, ahead) if guess is not None and guess == seen else None
    if guess != seen:
        if len(_slot_fields_seen) >= _SLOT_FIELDS_MAX:
            _slot_fields_seen.clear()
        _slot_fields_seen[service_id] = seen
    return b, people[0], people[1], new_id, prefetched, heard_by  # type: ignore[return-value]


#: per bookable id: its SLOT_QUERY_FIELDS when this process last booked it (a guess that
#: lets the slot check ride along with the first round trip; see load_bookable_and_people)
_slot_fields_seen: dict[int, SimpleNamespace] = {}
_slot_fields_of = operator.attrgetter(*availability.SLOT_QUERY_FIELDS)  # (one C call: no loop per field)
_SLOT_FIELDS_MAX = 20_000


_PG_PEOPLE_COLUMNS = (
    ", ".join(f'b."{c}"' for c in _BOOKABLE_COLUMNS) + ", "
    + ", ".join(f'p."{c}"' for c in _PERSON_COLUMNS) + ", " + ", ".join(f'c."{c}"' for c in _PERSON_COLUMNS)
    + ", nextval('bookings_id_seq'), " + webhooks.LISTENERS_PG_COLUMN.format(provider="b.provider_id"))


def people_query(service_id: int, customer_id: int | None, ahead: list[tuple[str, dict[str, Any], int, bool]]
                  ) -> tuple[str, dict[str, Any]]:
    """(sql, params) of the first statement of a booking, with the slot check's statements
    `ahead` (availability.slot_queries_pg) riding along — see _people_sql."""
    params: dict[str, Any] = {"sid": service_id, "cid": customer_id}
    for i, (_sql, part_params, _n, _one) in enumerate(ahead):
        params.update({f"q{i}_{k}": v for k, v in part_params.items()})
    return _people_sql(tuple((sql, n, one) for sql, _p, n, one in ahead)), params


def slot_rows(row: Sequence[Any], ahead: list[tuple[str, dict[str, Any], int, bool]]) -> list[list[tuple]]:
    """The rows of each slot statement `ahead` from the first statement's `row` (laid out
    by _people_sql after the people columns, the id and the listeners)."""
    out, k = [], len(_BOOKABLE_COLUMNS) + 2 * len(_PERSON_COLUMNS) + 2
    for _sql, _params, n, one_row in ahead:
        if one_row:
            out.append([tuple(row[k:k + n])] if row[k] is not None else [])
            k += n
        else:
            out.append([tuple(r) for r in row[k]])
            k += 1
    return out


@functools.lru_cache(maxsize=64)
def _people_sql(slot_parts: tuple[tuple[str, int, bool], ...]) -> str:
    """The first statement of a booking: the bookable, its provider, the customer, the new
    id, the webhook endpoints listening (webhooks.LISTENERS_PG_COLUMN) — and the slot check's statements `slot_parts` (sql, columns, at
    most one row; from availability.slot_queries_pg, parameters renamed q<i>_<name>): one
    of at most one row as a LEFT JOIN LATERAL (its columns follow; NULL first column: no
    row), one of several rows as a JSON array of arrays. One statement instead of three
    saves psycopg's work per statement (docs/performance.md)."""
    columns, joins = [_PG_PEOPLE_COLUMNS], []
    for i, (sql, n, one_row) in enumerate(slot_parts):
        sql = availability.PG_PARAM.sub(lambda m, i=i: f"%(q{i}_{m.group(1)})s", sql)
        names = ", ".join(f"c{j}" for j in range(n))
        if one_row:
            joins.append(f" LEFT JOIN LATERAL ({sql}) AS q{i}({names}) ON true")
            columns.append(", ".join(f"q{i}.c{j}" for j in range(n)))
        else:
            columns.append(f"(SELECT coalesce(json_agg(json_build_array({', '.join(f'r.c{j}' for j in range(n))})), "
                           f"'[]') FROM ({sql}) AS r({names}))")
    return ("SELECT " + ", ".join(columns) + " FROM bookables b LEFT JOIN users p ON p.id = b.provider_id"
            " LEFT JOIN users c ON c.id = %(cid)s" + "".join(joins) + " WHERE b.id = %(sid)s")


@functools.lru_cache(maxsize=1)
def _people_stmt():
    provider = aliased(User, name="provider")
    customer = aliased(User, name="customer")
    return (select(Bookable, provider, customer)
            .outerjoin(provider, provider.id == Bookable.provider_id)  # type: ignore[arg-type]
            .outerjoin(customer, customer.id == bindparam("cid"))  # type: ignore[arg-type]
            .where(Bookable.id == bindparam("sid")))
