"""Report endpoints (admin only): JSON `{rows, summary, …}` or `?format=csv`.

Thin layer over booking_app/services/reports.py (and services/dashboard.py for the live
charts' series): parse the query, call the service, shape the answer. The service validates the period (422 problem+json on bad input).
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from booking_app.api.deps import get_locale, require_admin
from booking_app.api.schemas import SingleLineStr
from booking_app.i18n import N_
from booking_app.services import dashboard as dashboard_service
from booking_app.services import discount_reports, reports
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput

router = APIRouter(prefix="/api/reports", tags=["reports"], dependencies=[Depends(get_locale)])

FROM = Query(None, alias="from", description="First day (YYYY-MM-DD, inclusive) in `tz`", examples=["2026-11-01"],
             max_length=40)
TO = Query(None, alias="to", description="Last day (YYYY-MM-DD, inclusive) in `tz`; at most 366 days after `from`",
           examples=["2026-11-30"], max_length=40)
TZ = Query(None, description="IANA time zone of the days (e.g. Europe/Paris); default: the admin's own time zone",
           max_length=64)
# (str parameters with a default are Annotated: FastAPI keeps the type's own validators only so)
FORMAT = Query(description="`json` (default) or `csv` (the rows with a header row)", max_length=16)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The report"},
    401: {"description": "Not signed in"},
    403: {"description": "Not an administrator"},
    422: {"description": "Invalid period, grouping or time zone"},
}


def _answer(report: reports.Report, fmt: str, actor: Actor) -> Response:
    if fmt == "csv":
        filename = f"{report.name}-{report.group_by or 'all'}-{report.date_from.isoformat()}-{report.date_to.isoformat()}.csv"
        return Response(reports.export_csv(actor=actor, report=report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return JSONResponse(report.to_dict())


def _format(value: str) -> str:
    value = (value or "json").lower()
    if value not in ("json", "csv"):
        raise InvalidInput(N_("Unknown format {value}."), field="format", value=value)
    return value


@router.get("/bookings", summary="Bookings per day, bookable or status", responses=_RESPONSES)
def bookings_report(
    date_from: SingleLineStr | None = FROM, date_to: SingleLineStr | None = TO,
    group_by: Annotated[SingleLineStr, Query(description="day | service | status", max_length=32)] = "day",
    basis: Annotated[SingleLineStr, Query(description="date bookings by `start` (when they take place) or `created`",
                                          max_length=32)] = "start",
    tz: SingleLineStr | None = TZ, format: Annotated[SingleLineStr, FORMAT] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = _format(format)
    return _answer(reports.bookings(actor=actor, date_from=date_from, date_to=date_to, group_by=group_by,
                                    tz=tz, basis=basis), fmt, actor)


@router.get("/revenue", summary="Gross, refunds and net revenue per currency", responses=_RESPONSES)
def revenue_report(
    date_from: SingleLineStr | None = FROM, date_to: SingleLineStr | None = TO,
    group_by: Annotated[SingleLineStr, Query(description="day | service | method", max_length=32)] = "day",
    tz: SingleLineStr | None = TZ, format: Annotated[SingleLineStr, FORMAT] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = _format(format)
    return _answer(reports.revenue(actor=actor, date_from=date_from, date_to=date_to, group_by=group_by, tz=tz), fmt, actor)


@router.get("/discounts", summary="Discount codes: gross, discounts and net per currency; uses per code",
            responses=_RESPONSES)
def discounts_report(
    date_from: SingleLineStr | None = FROM, date_to: SingleLineStr | None = TO,
    tz: SingleLineStr | None = TZ, format: Annotated[SingleLineStr, FORMAT] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = _format(format)
    return _answer(discount_reports.report(actor=actor, date_from=date_from, date_to=date_to, tz=tz), fmt, actor)


@router.get("/users", summary="Registrations, active users, bookings per user, top customers", responses=_RESPONSES)
def users_report(
    date_from: SingleLineStr | None = FROM, date_to: SingleLineStr | None = TO,
    top: int = Query(reports.TOP_CUSTOMERS_LIMIT, ge=1, le=100, description="how many top customers"),
    tz: SingleLineStr | None = TZ, format: Annotated[SingleLineStr, FORMAT] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = _format(format)
    return _answer(reports.users(actor=actor, date_from=date_from, date_to=date_to, tz=tz, top=top), fmt, actor)


@router.get("/utilization", summary="Booked vs available hours per bookable", responses=_RESPONSES)
def utilization_report(
    date_from: SingleLineStr | None = FROM, date_to: SingleLineStr | None = TO,
    tz: SingleLineStr | None = TZ, format: Annotated[SingleLineStr, FORMAT] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = _format(format)
    return _answer(reports.utilization(actor=actor, date_from=date_from, date_to=date_to, tz=tz), fmt, actor)


@router.get("/rates", summary="Cancellation and no-show rates per bookable", responses=_RESPONSES)
def rates_report(
    date_from: SingleLineStr | None = FROM, date_to: SingleLineStr | None = TO,
    tz: SingleLineStr | None = TZ, format: Annotated[SingleLineStr, FORMAT] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = _format(format)
    return _answer(reports.rates(actor=actor, date_from=date_from, date_to=date_to, tz=tz), fmt, actor)


@router.get("/dashboard", summary="Live dashboard: today's figures and system metrics",
            responses={k: v for k, v in _RESPONSES.items() if k != 200})
def dashboard(tz: SingleLineStr | None = TZ, actor: Actor = Depends(require_admin)) -> dict[str, Any]:
    return reports.dashboard_snapshot(actor=actor, tz=tz)


@router.get("/dashboard/series", summary="Live dashboard charts: per-minute (hour) or per-quarter-hour (day) series",
            responses={**{k: v for k, v in _RESPONSES.items() if k != 200}, 422: {"description": "Unknown window"}})
def dashboard_series(
    window: Annotated[SingleLineStr, Query(description="`hour` (per minute, the last 60 minutes) or `day` "
                                                       "(per quarter hour, the last 24 hours)", max_length=8)] = "hour",
    actor: Actor = Depends(require_admin),
) -> dict[str, Any]:
    return dashboard_service.dashboard_series(actor=actor, window=window)
