"""The live dashboard's charts: Plotly figures built from `services.dashboard.dashboard_series`
(bookings, net revenue per currency, requests/s with p95 latency, outbox backlog) and the
components that show them.

The figures keep one layout (fixed height and margins, `uirevision`) so that each refresh
only swaps the traces' data: the browser's Plotly redraws in place, without flicker and
without losing a zoom. Times are the view's time zone, labelled in the page's language; money
is formatted by services/messages.format_money (hover text and summaries carry the currency).
For screen readers each chart is a figure named by its heading and described by a one-line
summary, and a table of the latest periods repeats the numbers (the plot itself is hidden
from them). Colours: ≥ 4.5:1 against the white card, so lines and bars read at ≥ 3:1.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import plotly.graph_objects as go
import reflex as rx
from babel.dates import format_datetime, format_skeleton
from babel.numbers import format_decimal

from booking_app.i18n import N_, babel_locale, translate
from booking_app.services.messages import format_money
from booking_app.services.money import to_decimal
from booking_app.services.validation import zone
from booking_app.ui.components import T
from booking_app.ui.components.staff import scroll_table, td, th

#: chart key → title msgid (the cards' headings, in this order)
CHARTS: dict[str, str] = {"bookings": N_("Bookings made"), "revenue": N_("Net revenue"),
                          "requests": N_("Requests per second and p95 latency"), "backlog": N_("Outbox backlog")}
#: window → the switch's label
WINDOW_LABELS = {"hour": N_("Last hour (per minute)"), "day": N_("Last day (per 15 minutes)")}
#: Tailwind 700-level hues: 4.6–7:1 on white, told apart by dash and marker too
COLORS = {"bookings": "#1d4ed8", "requests": "#0e7490", "p95": "#c2410c", "backlog": "#6d28d9"}
CURRENCY_COLORS = ("#047857", "#b45309", "#be123c", "#4338ca", "#374151")
TABLE_PERIODS = 10  # periods in the screen-reader table (the latest first)
CHART_HEIGHT = 260


def _layout(fig: go.Figure, *, y_title: str, y2_title: str | None = None) -> go.Figure:
    fig.update_layout(
        height=CHART_HEIGHT, margin=dict(l=48, r=48 if y2_title else 12, t=8, b=40), uirevision="live",
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font=dict(size=12, color="#1f2937"),
        legend=dict(orientation="h", y=-0.22, x=0), showlegend=True, hovermode="x unified", bargap=0.15,
        xaxis=dict(type="category", nticks=6, tickangle=0, showgrid=False, automargin=True),
        yaxis=dict(title=dict(text=y_title, font=dict(size=11)), rangemode="tozero",
                   gridcolor="rgba(107,114,128,0.25)", zeroline=False, automargin=True),
    )
    if y2_title:
        fig.update_layout(yaxis2=dict(title=dict(text=y2_title, font=dict(size=11)), overlaying="y", side="right",
                                      rangemode="tozero", showgrid=False, automargin=True))
    return fig


def _counts_axis(fig: go.Figure, values: list[int]) -> go.Figure:
    """A count axis: whole-number ticks (no 0.2 bookings), at least 0–4."""
    top = max(4, max(values, default=0))
    step = max(1, -(-top // 4))
    fig.update_yaxes(range=[0, step * 4 * 1.05], dtick=step, tick0=0, tickformat=",d")
    return fig


def _labels(series: dict[str, Any], tz: str, locale: str) -> list[str]:
    """Each period's start, in the view's zone, as the locale's short 24-hour time ("14:05";
    the hover text shows the date too)."""
    loc = babel_locale(locale)
    return [format_skeleton("Hm", _local(p, tz), locale=loc) for p in series["periods"]]


def _local(iso: str, tz: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone(tz))


def _num(value: float | int | None, locale: str, digits: int = 0) -> str:
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0" + ("." + "#" * digits if digits else ""), locale=babel_locale(locale))


def _currencies(series: dict[str, Any], default_currency: str) -> list[dict[str, Any]]:
    """The revenue lines; with no money in the window one zero line in `default_currency`
    (the chart says which currency it would be, never a bare 0)."""
    count = len(series["periods"])
    return series["revenue"] or [{"currency": default_currency, "net_cents": [0] * count}]


def figures(series: dict[str, Any], *, locale: str, tz: str, default_currency: str) -> dict[str, go.Figure]:
    """The four figures of `series` (legends and axis titles in `locale`)."""
    t = lambda msgid, **kw: translate(msgid, locale, **kw)  # noqa: E731
    x = _labels(series, tz, locale)
    when = [format_datetime(_local(p, tz), format="medium", locale=babel_locale(locale)) for p in series["periods"]]
    out: dict[str, go.Figure] = {}

    fig = go.Figure(go.Bar(x=x, y=series["bookings"], name=t("Bookings"), marker_color=COLORS["bookings"],
                           customdata=when, hovertemplate="%{customdata}: %{y}<extra></extra>"))
    out["bookings"] = _counts_axis(_layout(fig, y_title=t("Bookings")), series["bookings"])

    fig = go.Figure()
    for i, line in enumerate(_currencies(series, default_currency)):
        cur = line["currency"]
        money = [format_money(c, cur, locale) for c in line["net_cents"]]
        fig.add_trace(go.Scatter(
            x=x, y=[float(to_decimal(c, cur)) for c in line["net_cents"]], mode="lines+markers",
            name=t("Net revenue ({currency})", currency=cur), line=dict(color=CURRENCY_COLORS[i % len(CURRENCY_COLORS)],
                                                                          width=2, dash=("solid", "dash", "dot")[i % 3]),
            marker=dict(size=4), customdata=list(zip(when, money)),
            hovertemplate="%{customdata[0]}: %{customdata[1]}<extra></extra>"))
    out["revenue"] = _layout(fig, y_title=t("Amount (in each line's currency)"))

    fig = go.Figure([
        go.Scatter(x=x, y=series["requests_per_second"], mode="lines", name=t("Requests per second"),
                   line=dict(color=COLORS["requests"], width=2), customdata=when,
                   hovertemplate="%{customdata}: %{y:.2f}/s<extra></extra>"),
        go.Scatter(x=x, y=series["p95_ms"], mode="lines+markers", name=t("p95 latency (ms)"), yaxis="y2",
                   line=dict(color=COLORS["p95"], width=2, dash="dash"), marker=dict(size=4, symbol="diamond"),
                   connectgaps=False, customdata=when, hovertemplate="%{customdata}: %{y:.1f} ms<extra></extra>"),
    ])
    out["requests"] = _layout(fig, y_title=t("Requests per second"), y2_title=t("p95 latency (ms)"))

    fig = go.Figure(go.Scatter(x=x, y=series["backlog"], mode="lines", name=t("Messages waiting"),
                               line=dict(color=COLORS["backlog"], width=2, shape="hv"), fill="tozeroy",
                               fillcolor="rgba(109,40,217,0.12)", customdata=when,
                               hovertemplate="%{customdata}: %{y}<extra></extra>"))
    out["backlog"] = _counts_axis(_layout(fig, y_title=t("Messages waiting")), series["backlog"])
    return out


def summaries(series: dict[str, Any], *, locale: str, default_currency: str) -> dict[str, str]:
    """One sentence per chart for screen readers (and under each chart for everyone)."""
    t = lambda msgid, **kw: translate(msgid, locale, **kw)  # noqa: E731
    span = t(WINDOW_LABELS[series["window"]])
    money = ", ".join(format_money(sum(r["net_cents"]), r["currency"], locale)
                      for r in _currencies(series, default_currency))
    p95 = [v for v in series["p95_ms"] if v is not None]
    rps = series["requests_per_second"]
    return {
        "bookings": t("{span}: bookings made: {total} (at most {peak} in one period).", span=span,
                      total=_num(sum(series["bookings"]), locale), peak=_num(max(series["bookings"], default=0), locale)),
        "revenue": t("{span}: net revenue {amounts}.", span=span, amounts=money),
        "requests": t("{span}: requests per second now: {rps}; highest p95 latency: {p95} ms.", span=span,
                      rps=_num(rps[-1] if rps else 0, locale, 2), p95=_num(max(p95) if p95 else None, locale, 1)),
        "backlog": t("{span}: messages waiting now: {now} (at most {peak}).", span=span,
                     now=_num(series["backlog"][-1] if series["backlog"] else 0, locale),
                     peak=_num(max(series["backlog"], default=0), locale)),
    }


def table_rows(series: dict[str, Any], *, locale: str, tz: str, default_currency: str) -> list[dict[str, str]]:
    """The latest TABLE_PERIODS periods, newest first, as text cells."""
    x = _labels(series, tz, locale)
    lines = _currencies(series, default_currency)
    rows = []
    for i in range(len(x) - 1, max(-1, len(x) - 1 - TABLE_PERIODS), -1):
        rows.append({
            "time": x[i], "bookings": _num(series["bookings"][i], locale),
            "revenue": ", ".join(format_money(r["net_cents"][i], r["currency"], locale) for r in lines),
            "rps": _num(series["requests_per_second"][i], locale, 2),
            "p95": "—" if series["p95_ms"][i] is None else f"{_num(series['p95_ms'][i], locale, 1)} ms",
            "backlog": _num(series["backlog"][i], locale),
        })
    return rows


# ---- components ------------------------------------------------------------------------------

def live_chart(key: str, fig: rx.Var, summary: rx.Var) -> rx.Component:
    """One chart card: heading, the plot (hidden from screen readers) and its summary."""
    heading_id, summary_id = f"chart-{key}-title", f"chart-{key}-summary"
    return rx.card(
        rx.vstack(
            rx.heading(T(CHARTS[key]), size="3", as_="h3", id=heading_id),
            rx.box(
                rx.plotly(data=fig, use_resize_handler=True, width="100%", height=f"{CHART_HEIGHT}px",
                          config={"displayModeBar": False, "responsive": True}),
                width="100%", min_height=f"{CHART_HEIGHT}px", aria_hidden="true",
            ),
            rx.text(summary, size="1", color_scheme="gray", id=summary_id,
                    custom_attrs={"data-testid": f"chart-{key}-summary"}),
            spacing="2", width="100%",
        ),
        width="100%", role="figure",
        custom_attrs={"aria-labelledby": heading_id, "aria-describedby": summary_id,
                      "data-testid": f"chart-{key}"},
    )


def window_switch(current: rx.Var, on_pick) -> rx.Component:
    """Two toggle buttons: per minute over the last hour, per 15 minutes over the last day."""
    return rx.hstack(
        *[rx.button(T(label), size="2", variant=rx.cond(current == key, "solid", "outline"),
                    on_click=on_pick(key),
                    custom_attrs={"aria-pressed": rx.cond(current == key, "true", "false"),
                                  "data-testid": f"chart-window-{key}"})
          for key, label in WINDOW_LABELS.items()],
        spacing="2", wrap="wrap", role="group", aria_label=T("Chart period"),
    )


def chart_table(rows: rx.Var) -> rx.Component:
    """The charts' latest numbers as a table (stacked into cards on a phone)."""
    cols = [("time", N_("Time")), ("bookings", N_("Bookings")), ("revenue", N_("Net revenue")),
            ("rps", N_("Requests per second")), ("p95", N_("p95 latency")), ("backlog", N_("Messages waiting"))]
    return rx.el.details(
        rx.el.summary(T("Latest figures as a table"), class_name="chart-table-toggle",
                      custom_attrs={"data-testid": "chart-table-toggle"}),
        scroll_table(
            rx.table.header(rx.table.row(*[th(m) for _, m in cols])),
            rx.table.body(rx.foreach(rows, lambda r: rx.table.row(*[td(m, r[k]) for k, m in cols]))),
            testid="chart-table", label=N_("Latest figures as a table"), stack=True,
        ),
        width="100%",
    )
