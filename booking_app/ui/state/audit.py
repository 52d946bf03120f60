"""The admin's audit trail page: filters (actor, target user, action, period, IP), pages
of 50 events newest first, and a CSV download of the filtered events. Handlers call
services/audit.py (which checks the filters and the role); nothing here touches the
database. A bad filter is shown next to its input."""
from __future__ import annotations

import json

import reflex as rx

from booking_app.services import audit
from booking_app.services.errors import InvalidInput
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.staff import StaffState

PAGE_SIZE = 50
FILTER_FIELDS = ("actor_id", "user_id", "action", "from", "to", "ip")


@relocalized(paths.ADMIN_AUDIT)
class AuditState(StaffState):
    filters: dict[str, str] = {}
    errors: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    total: int = 0
    offset: int = 0
    error: str = ""

    @rx.var
    def page_start(self) -> int:
        return self.offset + 1 if self.total else 0

    @rx.var
    def page_end(self) -> int:
        return min(self.offset + PAGE_SIZE, self.total)

    @rx.var
    def has_previous(self) -> bool:
        return self.offset > 0

    @rx.var
    def has_next(self) -> bool:
        return self.offset + PAGE_SIZE < self.total

    @rx.event
    def load(self):
        self.error = ""
        self.errors = {}
        return self._load_rows(paths.ADMIN_AUDIT, admin_only=True)

    def _make_filters(self) -> audit.AuditFilters | None:
        f = self.filters
        try:
            return audit.make_filters(actor_id=f.get("actor_id"), user_id=f.get("user_id"), action=f.get("action"),
                                      date_from=f.get("from"), date_to=f.get("to"), ip=f.get("ip"),
                                      tz=self._view_tz())
        except InvalidInput as exc:
            field = exc.field if exc.field in FILTER_FIELDS else ""
            if field:
                self.errors = {field: self._error_text(exc)}
            else:
                self.error = self._error_text(exc)
            return None

    def _fetch(self, actor) -> None:
        filters = self._make_filters()
        if filters is None:
            self.rows, self.total = [], 0
            return
        page = self._ask(audit.list_events, actor=actor, filters=filters, limit=PAGE_SIZE, offset=self.offset)
        if page is None:
            return
        loc, tz = self.locale, self._view_tz()
        self.total = page.total
        self.rows = [{
            "id": str(e.id), "at": fmt.datetime_(e.at, tz, loc, "medium"), "action": e.action,
            "actor": str(e.actor_id) if e.actor_id is not None else "—",
            "target": f"{e.entity} {e.entity_id}" if e.entity_id not in ("", "-") else e.entity,
            "ip": e.ip or "—",
            "data": json.dumps(e.data, ensure_ascii=False, sort_keys=True, default=str) if e.data else "",
        } for e in page.items]

    @rx.event
    def filter(self, data: dict):
        self.filters = {k: str(data.get(k, "") or "").strip()[:100] for k in FILTER_FIELDS}
        self.offset = 0
        self.error = ""
        self.errors = {}
        self._fetch(self._actor())

    @rx.event
    def clear(self):
        self.filters = {}
        self.offset = 0
        self.error = ""
        self.errors = {}
        self._fetch(self._actor())

    @rx.event
    def next_page(self):
        if self.offset + PAGE_SIZE < self.total:
            self.offset += PAGE_SIZE
        self._fetch(self._actor())

    @rx.event
    def previous_page(self):
        self.offset = max(0, self.offset - PAGE_SIZE)
        self._fetch(self._actor())

    @rx.event
    def download_csv(self):
        """The filtered events as a CSV file (the reports page's download mechanism)."""
        self.error = ""
        self.errors = {}
        filters = self._make_filters()
        if filters is None:
            return
        data = self._ask(audit.csv_text, actor=self._actor(), filters=filters)
        if data is None:
            return
        return rx.download(data=data, filename="audit.csv", mime_type="text/csv")
