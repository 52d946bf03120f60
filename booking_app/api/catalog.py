"""Catalog and availability routes (Calendar Service): /api/services…

Thin: parse, call services/catalog.py and services/availability.py (which check who may
do what), shape the answer.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from booking_app.api.deps import REAUTH_HEADER, get_actor, get_locale, require_role, require_user
from booking_app.api.schemas import IdPath, SingleLineStr, problem_responses
from booking_app.api.schemas_catalog import (
    AvailabilityIn,
    AvailabilityOut,
    BookableCreateIn,
    BookableOut,
    BookablePageOut,
    BookableUpdateIn,
    Kind,
    SessionIn,
    SessionOut,
    SlotOut,
    SlotsOut,
)
from booking_app.services import availability, catalog
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/services", tags=["catalog"], dependencies=[Depends(get_locale)],
                   responses=problem_responses(422, 503))

MANAGE_PROBLEMS = problem_responses(401, 403, 404)
require_manager = require_role("provider", "admin")

#: OpenAPI links from a created bookable to the operations on it (stateful API testing, client hints)
CREATED_LINKS = {
    "description": "Created",
    "links": {
        name: {"operationId": op, "parameters": {"id": "$response.body#/id"}, "description": text}
        for name, op, text in (
            ("GetService", "get_service", "The created bookable"),
            ("UpdateService", "update_service", "Change it"),
            ("GetAvailability", "get_availability", "Its weekly hours"),
            ("SetAvailability", "set_availability", "Replace its weekly hours"),
            ("AddSession", "add_session", "Add a session (events)"),
            ("ListSessions", "list_sessions", "Its sessions"),
            ("ListSlots", "list_slots", "Its free slots"),
        )
    },
}

DATE_QUERY = dict(min_length=1, max_length=10, examples=["2026-12-01"])


def _bookable(view: catalog.BookableView) -> BookableOut:
    return BookableOut.model_validate(asdict(view))


def _availability(view: catalog.AvailabilityView) -> AvailabilityOut:
    return AvailabilityOut.model_validate(asdict(view))


@router.get("", response_model=BookablePageOut, summary="Search rooms, services and events")
def list_services(
    actor: Actor = Depends(get_actor),
    q: SingleLineStr | None = Query(default=None, max_length=200, description="text in name, description or location"),
    kind: Kind | None = Query(default=None),
    date: SingleLineStr | None = Query(default=None, description="only those with a free slot on this local date",
                             **DATE_QUERY),
    location: SingleLineStr | None = Query(default=None, max_length=200),
    provider_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    include_inactive: bool = Query(default=False, description="providers: also their own inactive ones; admins: all"),
    limit: int = Query(default=50, ge=1, le=catalog.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> BookablePageOut:
    items, total = catalog.search_bookables(actor=actor, q=q, kind=kind, location=location, date=date,
                                            provider_id=provider_id, include_inactive=include_inactive,
                                            limit=limit, offset=offset)
    return BookablePageOut(items=[_bookable(v) for v in items], total=total)


@router.get("/{id}", operation_id="get_service",
            response_model=BookableOut, summary="One bookable", responses=problem_responses(404))
def get_service(id: IdPath, actor: Actor = Depends(get_actor)) -> BookableOut:  # noqa: A002
    return _bookable(catalog.get_bookable(bookable_id=id, actor=actor))


@router.post("", status_code=201, response_model=BookableOut,
             summary="Create a room, service or event", operation_id="create_service", responses={**problem_responses(401, 403), 201: CREATED_LINKS})
def create_service(body: BookableCreateIn,
                   actor: Actor = Depends(require_manager)) -> BookableOut:
    values: dict[str, Any] = body.model_dump(exclude_none=True)
    return _bookable(catalog.create_bookable(actor=actor, **values))


@router.put("/{id}", operation_id="update_service",
            response_model=BookableOut, summary="Change a bookable (partial; a new price needs a recent sign-in "
                                                   "or X-Reauth)",
            responses={**MANAGE_PROBLEMS, **problem_responses(429)})
def update_service(id: IdPath, body: BookableUpdateIn, actor: Actor = Depends(require_user),  # noqa: A002
                   _x_reauth: str | None = REAUTH_HEADER) -> BookableOut:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return _bookable(catalog.update_bookable(actor=actor, bookable_id=id, **changes))


@router.get("/{id}/availability", operation_id="get_availability",
            response_model=AvailabilityOut, summary="Weekly hours and date exceptions",
            responses=problem_responses(404))
def get_availability(id: IdPath, actor: Actor = Depends(get_actor)) -> AvailabilityOut:  # noqa: A002
    return _availability(catalog.get_availability(bookable_id=id, actor=actor))


@router.put("/{id}/availability", operation_id="set_availability", response_model=AvailabilityOut,
            summary="Replace the weekly hours and date exceptions", responses=MANAGE_PROBLEMS)
def set_availability(id: IdPath, body: AvailabilityIn,  # noqa: A002
                     actor: Actor = Depends(require_user)) -> AvailabilityOut:
    return _availability(catalog.set_availability(
        actor=actor, bookable_id=id,
        weekly=[w.model_dump() for w in body.weekly],
        exceptions=[e.model_dump() for e in body.exceptions],
    ))


@router.post("/{id}/sessions", operation_id="add_session", status_code=201,
             response_model=SessionOut,
             summary="Add a dated session to an event", responses=MANAGE_PROBLEMS)
def add_session(id: IdPath, body: SessionIn,  # noqa: A002
                actor: Actor = Depends(require_user)) -> SessionOut:
    view = catalog.add_event_session(actor=actor, bookable_id=id, start=body.start, capacity=body.capacity)
    return SessionOut.model_validate(asdict(view))


@router.get("/{id}/sessions", operation_id="list_sessions",
            response_model=list[SessionOut], summary="Sessions of an event",
            responses=problem_responses(404))
def list_sessions(
    id: IdPath,  # noqa: A002
    actor: Actor = Depends(get_actor),
    date_from: SingleLineStr | None = Query(default=None, alias="from", **DATE_QUERY),
    date_to: SingleLineStr | None = Query(default=None, alias="to", **DATE_QUERY),
) -> list[SessionOut]:
    views = catalog.list_event_sessions(bookable_id=id, actor=actor, date_from=date_from, date_to=date_to)
    return [SessionOut.model_validate(asdict(v)) for v in views]


@router.get("/{id}/slots", operation_id="list_slots",
            response_model=SlotsOut, summary="Free slots between two local dates (inclusive)",
            responses=problem_responses(404))
def list_slots(
    id: IdPath,  # noqa: A002
    # (Annotated: FastAPI keeps a type's own validators only in this form for a required parameter)
    date_from: Annotated[SingleLineStr, Query(alias="from", **DATE_QUERY)],
    date_to: Annotated[SingleLineStr, Query(alias="to", **DATE_QUERY)],
    actor: Actor = Depends(get_actor),
) -> SlotsOut:
    views = availability.slots(bookable_id=id, date_from=date_from, date_to=date_to, actor=actor)
    return SlotsOut(
        slots=[SlotOut(start=v.start, end=v.end, remaining=v.remaining) for v in views])
