"""Admin pages' states: reports (Plotly charts, tables, CSV) and the live dashboard (a
background event refreshing a snapshot every few seconds while the page is open). Handlers
call the reports service; nothing here touches the database."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import plotly.graph_objects as go
import reflex as rx
from babel.dates import format_time
from babel.numbers import format_currency, format_decimal, format_percent

from booking_app.i18n import N_, Np_, babel_locale, translate
from booking_app.services import dashboard, discount_reports, reports
from booking_app.services.errors import ServiceError
from booking_app.services.money import to_decimal
from booking_app.services.validation import zone
from booking_app.ui import paths
from booking_app.ui.components import live_charts
from booking_app.ui.state import fmt
from booking_app.ui.state.base import relocalized
from booking_app.ui.state.live_slots import tab_connected
from booking_app.ui.state.staff import PAYMENT_METHOD_LABELS, STATUS_LABELS, StaffState, label

log = logging.getLogger(__name__)
DASHBOARD_INTERVAL = 3.0  # seconds between two dashboard snapshots
DASHBOARD_MAX_SECONDS = 4 * 3600  # a forgotten tab stops refreshing after this long


def _pct(value: float | None, locale: str) -> str:
    if value is None:
        return "—"
    return format_percent(value, format="#,##0.#%", locale=babel_locale(locale))


def _money(cents: int, currency: str, locale: str) -> str:
    """Like fmt.money, but zero is "€0.00" (a figure, not a price)."""
    return format_currency(to_decimal(cents, currency), currency, locale=babel_locale(locale))


def net_total(rows: list[dict], locale: str) -> str:
    """The net revenue of `rows` (one per currency) as money, each with its currency; none
    (or all zero) reads as zero in the first currency seen, else the site's default."""
    text = ", ".join(_money(r["net_cents"], r["currency"], locale) for r in rows if r.get("net_cents"))
    return text or _money(0, rows[0]["currency"] if rows else fmt.DEFAULT_CURRENCY, locale)


def _num(value, locale: str, digits: int = 0) -> str:
    if value is None:
        return "—"
    fmt_ = "#,##0" + ("." + "#" * digits if digits else "")
    return format_decimal(value, format=fmt_, locale=babel_locale(locale))


# ---------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------

def _layout(fig: go.Figure, *, barmode: str | None = None) -> go.Figure:
    fig.update_layout(margin=dict(l=40, r=10, t=10, b=40), height=300, legend=dict(orientation="h", y=-0.2),
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font=dict(size=12),
                      **({"barmode": barmode} if barmode else {}))
    fig.update_yaxes(gridcolor="rgba(128,128,128,0.2)", rangemode="tozero")
    return fig


REPORT_NAMES = {"bookings_day": N_("Bookings per day"), "bookings_service": N_("Bookings per service"),
                "revenue_day": N_("Revenue per day"), "revenue_service": N_("Revenue per service"),
                "revenue_method": N_("Revenue per payment method"), "users": N_("User activity"),
                "utilization": N_("Utilization"), "rates": N_("Cancellation and no-show rates"),
                "discounts": N_("Discount codes")}


#: the bookings chart's stacks: every booking status, in this order, with its colour
CHART_STATUSES = {"confirmed": "#30a46c", "completed": "#0090ff", "pending": "#ffc53d",
                  "awaiting_approval": "#8e4ec6", "no_show": "#e5484d", "cancelled": "#8b8d98"}


@relocalized(paths.ADMIN_REPORTS)
class ReportsState(StaffState):
    date_from: str = ""
    date_to: str = ""
    error: str = ""
    loading: bool = False
    loaded: bool = False
    summary: dict[str, str] = {}
    bookings_fig: go.Figure = go.Figure()
    revenue_fig: go.Figure = go.Figure()
    users_fig: go.Figure = go.Figure()
    by_service: list[dict[str, str]] = []
    revenue_totals: list[dict[str, str]] = []
    # discount codes (issue 26): gross, discounts, net per currency; uses per code
    discount_totals: list[dict[str, str]] = []
    discount_codes: list[dict[str, str]] = []
    revenue_by_method: list[dict[str, str]] = []
    top_customers: list[dict[str, str]] = []
    utilization_rows: list[dict[str, str]] = []
    rates_rows: list[dict[str, str]] = []
    csv_report: str = "bookings_day"

    @rx.var(cache=True)
    def report_options(self) -> list[list[str]]:
        return [[key, translate(msgid, self.locale)] for key, msgid in REPORT_NAMES.items()]

    @rx.event
    def load(self):
        self.error = ""
        actor, redirect = self._staff_actor(paths.ADMIN_REPORTS, admin_only=True)
        if redirect:
            return redirect
        if actor is None:
            return
        params = self.router.url.query_parameters
        today = dt.datetime.now(zone(self._view_tz())).date()
        self.date_from = str(params.get("from", "") or "")[:10] or self.date_from or \
            (today - dt.timedelta(days=29)).isoformat()
        self.date_to = str(params.get("to", "") or "")[:10] or self.date_to or today.isoformat()
        self._run(actor)

    @rx.event
    async def apply(self, data: dict):
        if self.loading:
            return
        self.date_from = str(data.get("date_from", self.date_from) or "")[:10]
        self.date_to = str(data.get("date_to", self.date_to) or "")[:10]
        self.loading = True
        self.error = ""
        yield
        self._run(self._actor())
        self.loading = False

    @rx.event
    def set_date_from(self, value: str):
        self.date_from = str(value or "")[:10]

    @rx.event
    def set_date_to(self, value: str):
        self.date_to = str(value or "")[:10]

    @rx.event
    def set_csv_report(self, value: str):
        if value in REPORT_NAMES:
            self.csv_report = value

    def _reports(self, actor):
        tz = self._view_tz()
        kw = dict(actor=actor, date_from=self.date_from or None, date_to=self.date_to or None, tz=tz)
        return {
            "bookings_day": reports.bookings(group_by="day", **kw),
            "discounts": discount_reports.report(**kw),
            "bookings_service": reports.bookings(group_by="service", **kw),
            "revenue_day": reports.revenue(group_by="day", **kw),
            "revenue_method": reports.revenue(group_by="method", **kw),
            "users": reports.users(**kw),
            "utilization": reports.utilization(**kw),
            "rates": reports.rates(**kw),
            "waitlist": reports.waitlist(**kw),  # issue 24
        }

    def _run(self, actor) -> None:
        try:
            r = self._reports(actor)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            self.loaded = False
            return
        loc = self.locale
        lc = self.locale
        self.date_from, self.date_to = r["bookings_day"].date_from.isoformat(), r["bookings_day"].date_to.isoformat()
        # bookings per day, stacked by status
        days = [row["day"] for row in r["bookings_day"].rows]
        fig = go.Figure()
        for st, color in CHART_STATUSES.items():
            fig.add_trace(go.Bar(x=days, y=[row[st] for row in r["bookings_day"].rows], name=translate(STATUS_LABELS[st], lc),
                                 marker_color=color))
        self.bookings_fig = _layout(fig, barmode="stack")
        # revenue per day (net), one line per currency
        fig = go.Figure()
        by_cur: dict[str, dict[str, int]] = {}
        for row in r["revenue_day"].rows:
            by_cur.setdefault(row["currency"], {})[row["day"]] = row["net_cents"]
        for cur, values in sorted(by_cur.items()):
            fig.add_trace(go.Bar(x=days, y=[float(to_decimal(values.get(d, 0), cur)) for d in days], name=f"{translate('Net', lc)} {cur}"))
        if not by_cur:  # an empty period still shows its days
            fig.add_trace(go.Bar(x=days, y=[0] * len(days), name=translate("Net", lc), showlegend=False))
        self.revenue_fig = _layout(fig)
        # users per day
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=days, y=[row["registrations"] for row in r["users"].rows], mode="lines+markers",
                                 name=translate("Registrations", lc)))
        fig.add_trace(go.Scatter(x=days, y=[row["active_users"] for row in r["users"].rows], mode="lines+markers",
                                 name=translate("Active users", lc)))
        self.users_fig = _layout(fig)
        # tables
        self.by_service = [{"name": row["service_name"], "kind": fmt.kind_label(row["kind"], loc),
                            "bookings": _num(row["bookings"], loc), "seats": _num(row["quantity"], loc),
                            "cancelled": _num(row["cancelled"], loc), "completed": _num(row["completed"], loc)}
                           for row in r["bookings_service"].rows]
        totals = r["revenue_day"].summary.get("totals", [])
        self.revenue_totals = [{"currency": x["currency"], "payments": _num(x["payments"], loc),
                                "gross": _money(x["gross_cents"], x["currency"], loc),
                                "refunds": _money(x["refunds_cents"], x["currency"], loc),
                                "net": _money(x["net_cents"], x["currency"], loc)} for x in totals]
        self.revenue_by_method = [{"method": label(PAYMENT_METHOD_LABELS, row["method"], loc),
                                   "currency": row["currency"],
                                   "payments": _num(row["payments"], loc),
                                   "net": _money(row["net_cents"], row["currency"], loc)}
                                  for row in r["revenue_method"].rows]
        self.discount_totals = [{"currency": x["currency"], "bookings": _num(x["bookings"], loc),
                                 "gross": _money(x["gross_cents"], x["currency"], loc),
                                 "discounts": _money(x["discount_cents"], x["currency"], loc),
                                 "net": _money(x["net_cents"], x["currency"], loc)}
                                for x in r["discounts"].summary.get("totals", [])]
        self.discount_codes = [{"code": row["code"], "uses": _num(row["uses"], loc),
                                "discounts": _money(row["discount_cents"], row["currency"], loc),
                                "net": _money(row["net_cents"], row["currency"], loc)} for row in r["discounts"].rows]
        us = r["users"].summary
        self.top_customers = [{"name": c["full_name"] or c["username"], "email": c["email"],
                               "bookings": _num(c["bookings"], loc)} for c in us.get("top_customers", [])]
        self.utilization_rows = [{"name": row["service_name"], "kind": fmt.kind_label(row["kind"], loc),
                                  "available": _num(row["available_hours"], loc, 1),
                                  "booked": _num(row["booked_hours"], loc, 1),
                                  "rate": _pct(row["utilization"], loc)} for row in r["utilization"].rows]
        self.rates_rows = [{"name": row["service_name"], "bookings": _num(row["bookings"], loc),
                            "cancelled": _num(row["cancelled"], loc), "no_show": _num(row["no_show"], loc),
                            "cancellation_rate": _pct(row["cancellation_rate"], loc),
                            "no_show_rate": _pct(row["no_show_rate"], loc)} for row in r["rates"].rows]
        bs, rs, ut = r["bookings_day"].summary, r["rates"].summary, r["utilization"].summary
        net = net_total(totals, loc)
        self.summary = {
            "bookings": _num(bs["bookings"], loc), "seats": _num(bs["quantity"], loc), "net": net,
            "active_users": _num(us["active_users"], loc), "registrations": _num(us["registrations"], loc),
            "utilization": _pct(ut["utilization"], loc),
            "cancellation_rate": _pct(rs["cancellation_rate"], loc), "no_show_rate": _pct(rs["no_show_rate"], loc),
            **{f"waitlist_{k}": (_pct(v, loc) if k == "conversion" else _num(v, loc))  # (issue 24)
               for k, v in r["waitlist"].summary.items()},
        }
        self.loaded = True

    def _refresh_rows(self, actor) -> None:
        if self.loaded:
            self._run(actor)

    @rx.event
    def download_csv(self):
        actor = self._actor()
        key = self.csv_report if self.csv_report in REPORT_NAMES else "bookings_day"
        tz = self._view_tz()
        kw = dict(actor=actor, date_from=self.date_from or None, date_to=self.date_to or None, tz=tz)
        try:
            if key.startswith("bookings_"):
                report = reports.bookings(group_by=key.split("_", 1)[1], **kw)
            elif key.startswith("revenue_"):
                report = reports.revenue(group_by=key.split("_", 1)[1], **kw)
            else:
                report = {"users": reports.users, "utilization": reports.utilization, "rates": reports.rates,
                          "discounts": discount_reports.report}[key](**kw)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        return rx.download(data=reports.export_csv(actor=actor, report=report), filename=f"{key}-{report.date_from}-{report.date_to}.csv",
                           mime_type="text/csv")


# ---------------------------------------------------------------------------------------
# Live dashboard
# ---------------------------------------------------------------------------------------

def _clock(tz: str, locale: str) -> str:
    return format_time(fmt.local(dt.datetime.now(dt.timezone.utc), tz), format="medium", locale=babel_locale(locale))


@relocalized(paths.ADMIN_DASHBOARD)
class DashboardState(StaffState):
    cards: dict[str, str] = {}
    # the live charts (ui/components/live_charts.py): figures swapped each refresh, the
    # layout unchanged, so the browser's Plotly redraws them in place
    series_window: str = "hour"
    bookings_chart: go.Figure = go.Figure()
    revenue_chart: go.Figure = go.Figure()
    requests_chart: go.Figure = go.Figure()
    backlog_chart: go.Figure = go.Figure()
    chart_summaries: dict[str, str] = {}
    chart_rows: list[dict[str, str]] = []
    updated: str = ""
    error: str = ""
    live: bool = False
    ticks: int = 0
    _run_id: int = 0

    @rx.event
    def load(self):
        self.error = ""
        actor, redirect = self._staff_actor(paths.ADMIN_DASHBOARD, admin_only=True)
        if redirect:
            return redirect
        if actor is None:
            self.live = False
            return
        self._snapshot(actor)
        self.live = True
        self._run_id += 1
        return DashboardState.refresh_loop

    def _refresh_rows(self, actor) -> None:
        self._snapshot(actor)

    @rx.event
    def stop(self):
        """The page is left (unmounted): the loop ends at its next tick."""
        self.live = False
        self._run_id += 1

    @rx.event
    def resume(self):
        if not self.live and not self.denied:
            self.live = True
            self._run_id += 1
            return DashboardState.refresh_loop

    @rx.event
    def set_series_window(self, window: str):
        """Per minute over the last hour, or per 15 minutes over the last day."""
        if window in dashboard.WINDOWS and window != self.series_window:
            self.series_window = window
            actor = self._actor()
            if actor is not None:
                self._snapshot(actor)

    def _snapshot(self, actor) -> None:
        try:
            snap = reports.dashboard_snapshot(actor=actor, tz=self._view_tz())
            series = dashboard.dashboard_series(actor=actor, window=self.series_window)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        self.error = ""
        self.cards = self._cards(snap)
        self._charts(series)
        self.updated = _clock(self._view_tz(), self.locale)

    def _charts(self, series: dict) -> None:
        if series["window"] != self.series_window:  # the switch moved while it was computed
            return
        opts = dict(locale=self.locale, default_currency=fmt.DEFAULT_CURRENCY)
        figs = live_charts.figures(series, tz=self._view_tz(), **opts)
        self.bookings_chart, self.revenue_chart = figs["bookings"], figs["revenue"]
        self.requests_chart, self.backlog_chart = figs["requests"], figs["backlog"]
        self.chart_summaries = live_charts.summaries(series, **opts)
        self.chart_rows = live_charts.table_rows(series, tz=self._view_tz(), **opts)

    def _cards(self, snap: dict) -> dict[str, str]:
        loc = self.locale
        b = snap["bookings_today"]
        rev = snap["revenue_today"]
        net = net_total(rev, loc)
        occ = snap["occupancy_today"]
        pend = snap["pending_payments"]
        sysm = snap["system"]
        pool = sysm.get("db_pool") or {}
        lag = sysm.get("max_job_lag_seconds")
        return {
            "created": _num(b["created"], loc), "scheduled": _num(b["scheduled"], loc),
            "seats": translate(Np_("{count} seat", "{count} seats", "n"), self.locale, count=_num(b["seats"], loc),
                               n=int(b["seats"] or 0)),
            "cancelled": _num(b["cancelled"], loc),
            "revenue": net, "occupancy": _pct(occ["rate"], loc),
            "occupancy_detail": translate("{booked} of {available} hours", self.locale,
                                          booked=_num(occ["booked_hours"], loc, 1),
                                          available=_num(occ["available_hours"], loc, 1)),
            "pending_payments": _num(pend["count"], loc), "on_hold": _num(pend["bookings_on_hold"], loc),
            "failed": _num(snap["notifications"]["failed"], loc),
            "queued": _num(snap["notifications"]["pending"], loc),
            "rps": _num(sysm.get("requests_per_second"), loc, 2),
            "p95": "—" if sysm.get("p95_ms") is None else f"{_num(sysm['p95_ms'], loc, 1)} ms",
            "error_rate": _pct(sysm.get("error_rate"), loc),
            "pool": translate("{used} in use of {size}", self.locale, used=_num(pool.get("checked_out", 0), loc),
                            size=_num(pool.get("size", 0) + pool.get("overflow", 0) if pool.get("overflow", 0) > 0
                                      else pool.get("size", 0), loc)),
            "job_lag": "—" if lag is None else f"{_num(lag, loc, 1)} s",
            # with Redis the system figures are every app process's (services/request_stats.py)
            "scope": translate("System figures cover the last minute of this app process.", self.locale)
            if (sysm.get("processes") or 1) <= 1 else
            translate("System figures cover the last minute of all app processes ({count}).", self.locale,
                      count=_num(sysm["processes"], loc)),
            "failed_alert": "1" if snap["notifications"]["failed"] else "",
        }

    @rx.event(background=True)
    async def refresh_loop(self):
        """Refresh the snapshot every DASHBOARD_INTERVAL seconds until the page is left,
        the tab disconnects, or another loop of this tab takes over."""
        async with self:
            run_id = self._run_id
            token = self.router.session.client_token
        started = time.monotonic()
        while True:
            await asyncio.sleep(DASHBOARD_INTERVAL)
            if time.monotonic() - started > DASHBOARD_MAX_SECONDS or not tab_connected(token):
                log.debug("dashboard loop %s ends: tab gone or too old", run_id)
                async with self:
                    if self._run_id == run_id:
                        self.live = False
                return
            async with self:
                if not self.live or self._run_id != run_id or \
                        str(self.router.page.path).rstrip("/") != paths.ADMIN_DASHBOARD:
                    log.debug("dashboard loop %s ends: page left or superseded", run_id)
                    return
                actor = self._actor()
                window = self.series_window
            try:
                snap = await asyncio.to_thread(reports.dashboard_snapshot, actor=actor, tz=self._view_tz())
                series = await asyncio.to_thread(dashboard.dashboard_series, actor=actor, window=window)
            except ServiceError as exc:
                async with self:
                    self.error = self._error_text(exc)
                    self.live = False
                return
            async with self:
                if self._run_id != run_id:
                    return
                self.cards = self._cards(snap)
                self._charts(series)
                self.ticks += 1
                self.updated = _clock(self._view_tz(), self.locale)
