"""The audit trail (admin only): `GET /api/admin/audit` with filters and paging, or the same
rows as CSV (`?format=csv`). Thin layer over booking_app/services/audit.py, which checks
the filters (422 problem+json) and the role, and audits the export itself.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from booking_app.api.deps import require_admin
from booking_app.api.schemas import ApiModel, AuditEventOut, SingleLineStr
from booking_app.i18n import N_
from booking_app.services import audit
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput

router = APIRouter(prefix="/api/admin", tags=["admin"])


class AuditTrailEventOut(AuditEventOut):
    ip: str | None = None


class AuditTrailPageOut(ApiModel):
    items: list[AuditTrailEventOut]
    total: int


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "A page of audit events (JSON), or every matching event as CSV"},
}

_ID = Query(default=None, ge=1, le=2**31 - 1)
_MOMENT = ("a day (YYYY-MM-DD, read in `tz`) or a date and time with an offset (ISO 8601); "
           "between 2000-01-01 and ten years from today")


@router.get("/audit", summary="The audit trail: every audited action, newest first (filters, paging, CSV)",
            response_model=AuditTrailPageOut, responses=_RESPONSES)
def admin_audit(
    actor_id: int | None = _ID,
    user_id: Annotated[int | None, Query(ge=1, le=2**31 - 1,
                                         description="what this user did or what was done to their account")] = None,
    action: Annotated[SingleLineStr | None, Query(max_length=66, description="e.g. `user.login`, or a family: `user.*`",
                                                  examples=["user.login"])] = None,
    date_from: Annotated[SingleLineStr | None, Query(alias="from", max_length=64, description="From " + _MOMENT,
                                                     examples=["2026-11-01"])] = None,
    date_to: Annotated[SingleLineStr | None, Query(alias="to", max_length=64,
                                                   description="To (a day: inclusive) " + _MOMENT,
                                                   examples=["2026-11-30"])] = None,
    ip: Annotated[SingleLineStr | None, Query(max_length=64, description="the client address, IPv4 or IPv6",
                                              examples=["203.0.113.7"])] = None,
    tz: Annotated[SingleLineStr | None, Query(max_length=64, description="IANA time zone of the days; "
                                              "default: the admin's own")] = None,
    limit: int = Query(default=50, ge=1, le=audit.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=10_000_000),
    format: Annotated[SingleLineStr, Query(max_length=16,  # noqa: A002
                                           description="`json` (default) or `csv` (every matching row, at most "
                                                       f"{audit.MAX_CSV_ROWS}; `limit`/`offset` do not apply)")] = "json",
    actor: Actor = Depends(require_admin),
) -> Response:
    fmt = (format or "json").lower()
    if fmt not in ("json", "csv"):
        raise InvalidInput(N_("Unknown format {value}."), field="format", value=format)
    filters = audit.make_filters(actor_id=actor_id, user_id=user_id, action=action, date_from=date_from,
                                 date_to=date_to, ip=ip, tz=tz or actor.timezone)
    if fmt == "csv":
        return StreamingResponse(audit.export_csv(actor=actor, filters=filters), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
    page = audit.list_events(actor=actor, filters=filters, limit=limit, offset=offset)
    body = AuditTrailPageOut(items=[AuditTrailEventOut.model_validate(e) for e in page.items], total=page.total)
    return JSONResponse(body.model_dump(mode="json"))
