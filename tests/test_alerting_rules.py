"""deploy/prometheus-rules.yml is valid and names only series the app's /metrics really has,
so the rules (and docs/alerting.md, which explains them) can't drift from the code."""
from __future__ import annotations

import pathlib
import re

import yaml

from booking_app.jobs.scheduler import JOBS

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus-rules.yml"
#: series Prometheus itself adds for every scrape target (not in any /metrics body)
SCRAPE_SERIES = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "on", "ignoring", "group_left", "group_right", "offset", "by",
                "without"}


def _rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert rules
    return rules


def _series(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (inside {} or by/without (...)) or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end():].lstrip()[:1]
        if following == "(" or match.group(0) in PROMQL_WORDS:
            continue
        if match.start() > 0 and expr[match.start() - 1].isdigit():  # 5m, 1e9
            continue
        names.add(match.group(0))
    return names


def _exposed(text: str) -> tuple[set[str], dict[str, set[str]]]:
    """The series names a /metrics body declares or samples (a counter `x` is `x_total`, a
    histogram `x` is `x_bucket`, `x_sum`, `x_count`), and the label names of each sample."""
    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
                        "summary": ["_sum", "_count", ""]}.get(kind, [""])
            names.update(name if name.endswith(suffix) else name + suffix for suffix in suffixes)
        elif line and not line.startswith("#"):
            name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0)
            names.add(name)
            labels.setdefault(name, set()).update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=\"", line))
    return names, labels


def test_rules_file_is_valid_and_complete():
    for rule in _rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"]) and rule["expr"].strip()
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_every_series_in_the_rules_exists_in_a_real_metrics_response(client):
    client.get("/api/health")
    client.post("/api/bookings", json={})  # a 4xx: status labels
    response = client.get("/metrics")
    assert response.status_code == 200
    exposed, labels = _exposed(response.text)
    used = set().union(*(_series(rule["expr"]) for rule in _rules()))
    assert {"booking_http_requests_total", "booking_job_lag_seconds", "booking_db_pool_size"} <= used
    assert used - SCRAPE_SERIES <= exposed, sorted(used - SCRAPE_SERIES - exposed)

    # label values the rules filter on are real too: jobs, routes, and the label names
    jobs = {spec.name for spec in JOBS}
    for rule in _rules():
        for job in re.findall(r'booking_job_lag_seconds\{job="([^"]+)"', rule["expr"]):
            assert job in jobs
        for route in re.findall(r'route="([^"]+)"', rule["expr"]):  # as the metrics label it
            assert f'route="{route}"' in response.text, route
    assert {"method", "route", "status"} <= labels["booking_http_requests_total"]
    assert "job" in labels["booking_job_lag_seconds"]


def test_the_guide_explains_every_alert():
    guide = (ROOT / "docs" / "alerting.md").read_text()
    for rule in _rules():
        assert f"`{rule['alert']}`" in guide, rule["alert"]
