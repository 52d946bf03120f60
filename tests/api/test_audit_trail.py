"""The admin's audit trail (issue 23, point 5): GET /api/admin/audit with filters, paging and
CSV; the events recorded for exports, outbox reads, session revocations and failed
re-authentication; append-only rows (a PostgreSQL trigger refuses UPDATE and DELETE)."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from tests.api.conftest import PASSWORD, assert_problem, make_account

UTC = dt.timezone.utc


def _add(**fields) -> None:
    from booking_app import db
    from booking_app.models import AuditEvent

    with db.unit_of_work() as s:
        s.add(AuditEvent(entity=fields.pop("entity", "user"), entity_id=str(fields.pop("entity_id", "-")),
                         data=fields.pop("data", {}), **fields))


def _actions(**where) -> list[str]:
    from booking_app import db
    from booking_app.models import AuditEvent

    with db.read_session() as s:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEvent, k) == v)
        return [e.action for e in s.exec(stmt).all()]


@pytest.fixture
def trail(client):
    """An admin, two users and five events on known days from known addresses."""
    admin = make_account("admin")
    alice = make_account("customer")
    bob = make_account("customer")
    _add(actor_id=alice.id, action="user.login", entity_id=alice.id, ip="203.0.113.7",
         at=dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    _add(actor_id=bob.id, action="user.login", entity_id=bob.id, ip="198.51.100.2",
         at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    _add(actor_id=admin.id, action="user.role_changed", entity_id=alice.id, data={"from": "customer", "to": "provider"},
         at=dt.datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    _add(actor_id=bob.id, action="booking.cancelled", entity="booking", entity_id=7,
         data={"reason": "=HYPERLINK(\"http://evil\")"}, at=dt.datetime(2026, 3, 4, 23, 30, tzinfo=UTC))
    _add(actor_id=alice.id, action="user.login_failed", entity_id=alice.id, ip="2001:db8::1",
         at=dt.datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    return admin, alice, bob


def _get(client, admin, **params):
    return client.get("/api/admin/audit", params={"from": "2026-03-01", "to": "2026-03-31", **params},
                      headers=admin.headers)


def test_filters_paging_newest_first(client, trail):
    admin, alice, bob = trail
    r = _get(client, admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 5
    assert [e["action"] for e in body["items"]] == ["user.login_failed", "booking.cancelled", "user.role_changed",
                                                    "user.login", "user.login"]
    first = body["items"][0]
    assert first["ip"] == "2001:db8::1" and first["at"] == "2026-03-05T09:00:00Z" and first["actor_id"] == alice.id

    def actions(**params):
        r = _get(client, admin, **params)
        assert r.status_code == 200, r.text
        return [e["action"] for e in r.json()["items"]]

    assert actions(actor_id=bob.id) == ["booking.cancelled", "user.login"]
    # the target user: what they did and what was done to their account
    assert actions(user_id=alice.id) == ["user.login_failed", "user.role_changed", "user.login"]
    assert actions(action="user.login") == ["user.login", "user.login"]
    assert actions(action="user.*") == ["user.login_failed", "user.role_changed", "user.login", "user.login"]
    assert actions(ip="203.0.113.7") == ["user.login"]
    assert actions(ip="2001:0db8:0000::1") == ["user.login_failed"]  # any spelling of the address
    assert actions(**{"from": "2026-03-02", "to": "2026-03-03"}) == ["user.role_changed", "user.login"]
    assert actions(**{"from": "2026-03-02T09:00:00Z", "to": "2026-03-03T08:59:59Z"}) == ["user.login"]
    # days are read in the time zone asked for: 23:30 UTC on the 4th is the 5th in Madrid
    assert actions(**{"from": "2026-03-05", "to": "2026-03-05"}, tz="Europe/Madrid") == \
        ["user.login_failed", "booking.cancelled"]
    # paging
    page = _get(client, admin, limit=2, offset=1).json()
    assert page["total"] == 5 and [e["action"] for e in page["items"]] == ["booking.cancelled", "user.role_changed"]
    assert _get(client, admin, limit=2, offset=10).json() == {"items": [], "total": 5}


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "1999-12-31"}, "from"),
    ({"to": "2999-01-01"}, "to"),
    ({"from": "2026-03-05", "to": "2026-03-01"}, "from"),
    ({"from": "2026-03-01T10:00:00"}, "from"),  # no offset
    ({"ip": "not-an-ip"}, "ip"),
    ({"ip": "10.0.0.0/8"}, "ip"),
    ({"action": "user login"}, "action"),
    ({"action": "*"}, "action"),
    ({"action": "user.\u202e"}, "action"),
    ({"tz": "Mars/Olympus"}, "tz"),
    ({"format": "xml"}, "format"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"actor_id": "0"}, "actor_id"),
    ({"user_id": "abc"}, "user_id"),
])
def test_bad_filters_are_422(client, params, field):
    admin = make_account("admin")
    r = client.get("/api/admin/audit", params=params, headers=admin.headers)
    body = assert_problem(r, 422)
    assert field in str(body), body


def test_control_characters_are_422(client):
    admin = make_account("admin")
    assert_problem(client.get("/api/admin/audit?action=user%00login", headers=admin.headers), 422)


def test_csv_has_the_filtered_rows_and_neutralises_formulas(client, trail):
    admin, alice, bob = trail
    r = _get(client, admin, format="csv", actor_id=bob.id)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["id", "at", "actor_id", "action", "entity", "entity_id", "ip", "data"]
    assert [row[3] for row in rows[1:]] == ["booking.cancelled", "user.login"]
    cancelled = rows[1]
    assert cancelled[1] == "2026-03-04T23:30:00Z" and cancelled[2] == str(bob.id) and cancelled[5] == "7"
    assert '"reason": "=HYPERLINK' in cancelled[7]  # JSON text starts with {: safe as it is
    assert rows[2][6] == "198.51.100.2"
    # a cell starting with = + - @ gets a quote
    _add(actor_id=bob.id, action="user.login", entity="=cmd", entity_id="@SUM(A1)", ip=None,
         at=dt.datetime(2026, 3, 6, tzinfo=UTC))
    rows = list(csv.reader(io.StringIO(_get(client, admin, format="csv", actor_id=bob.id).text)))
    assert rows[1][4] == "'=cmd" and rows[1][5] == "'@SUM(A1)"
    # the exports themselves are audited, with their filters
    assert _actions(action="audit.exported", actor_id=admin.id) == ["audit.exported", "audit.exported"]


def test_csv_reads_past_one_chunk(client, monkeypatch):
    from booking_app.services import audit

    monkeypatch.setattr(audit, "_CSV_CHUNK", 3)
    admin = make_account("admin")
    for i in range(8):
        _add(actor_id=admin.id, action="test.row", entity_id=i, at=dt.datetime(2026, 3, 1, tzinfo=UTC))
    r = client.get("/api/admin/audit", params={"format": "csv", "action": "test.row"}, headers=admin.headers)
    ids = [row[5] for row in list(csv.reader(io.StringIO(r.text)))[1:]]
    assert ids == [str(i) for i in reversed(range(8))]


def test_only_admins(client):
    customer, provider = make_account("customer"), make_account("provider")
    assert_problem(client.get("/api/admin/audit"), 401)
    assert_problem(client.get("/api/admin/audit", params={"format": "csv"}), 401)
    for who in (customer, provider):
        assert_problem(client.get("/api/admin/audit", headers=who.headers), 403)
        assert_problem(client.get("/api/admin/audit", params={"format": "csv"}, headers=who.headers), 403)


def test_service_refuses_non_admins(client):
    from booking_app.services import audit
    from booking_app.services.actors import Actor
    from booking_app.services.errors import Forbidden, Unauthorized

    with pytest.raises(Unauthorized):
        audit.list_events(actor=Actor.guest())
    with pytest.raises(Forbidden):
        audit.list_events(actor=Actor(id=5, role="provider"))
    with pytest.raises(Forbidden):
        audit.export_csv(actor=Actor(id=5, role="customer"))


def test_no_route_edits_or_deletes_audit_rows():
    from booking_app.api import create_api

    for route in create_api().routes:
        path = getattr(route, "path", "")
        if "audit" in path:
            assert getattr(route, "methods", set()) <= {"GET", "HEAD"}, (path, route.methods)


def test_new_events_are_recorded_with_the_client_ip(client, db_url):
    from booking_app.api import create_api

    admin = make_account("admin")
    user = make_account("customer")
    with TestClient(create_api(), raise_server_exceptions=False, client=("203.0.113.50", 4000)) as c:
        # report export (CSV), not the report view
        assert c.get("/api/reports/bookings", params={"from": "2026-03-01", "to": "2026-03-02"},
                     headers=admin.headers).status_code == 200
        assert _actions(action="report.exported") == []
        assert c.get("/api/reports/bookings", params={"from": "2026-03-01", "to": "2026-03-02", "format": "csv"},
                     headers=admin.headers).status_code == 200
        # outbox read
        assert c.get("/api/admin/notifications", headers=admin.headers).status_code == 200
        # failed re-authentication: a wrong current password
        r = c.put("/api/users/profile", json={"password": "another-Long-passphrase-7",
                                              "current_password": "wrong-password-1"}, headers=user.headers)
        assert_problem(r, 422)
        # a password change signs the other sessions out
        other = make_account("customer")
        second = c.post("/api/users/login", json={"username": other.username, "password": PASSWORD})
        assert second.status_code == 200, second.text
        r = c.put("/api/users/profile", json={"password": "another-Long-passphrase-7",
                                              "current_password": PASSWORD}, headers=other.headers)
        assert r.status_code == 200, r.text
        # data export (GDPR)
        assert c.get("/api/users/profile/export", headers=user.headers).status_code == 200
    page = client.get("/api/admin/audit", params={"ip": "203.0.113.50", "limit": 200}, headers=admin.headers).json()
    seen = {(e["action"], e["actor_id"]) for e in page["items"]}
    assert {("report.exported", admin.id), ("notification.listed", admin.id), ("user.reauth_failed", user.id),
            ("user.sessions_revoked", other.id), ("user.data_exported", user.id),
            ("user.login", other.id)} <= seen, seen
    revoked = next(e for e in page["items"] if e["action"] == "user.sessions_revoked")
    assert revoked["data"] == {"count": 1, "reason": "password_changed", "kept_current": True}
    exported = next(e for e in page["items"] if e["action"] == "report.exported")
    assert exported["entity"] == "report" and exported["data"]["from"] == "2026-03-01"


def test_outbox_view_and_admin_deactivation_are_recorded(client):
    admin = make_account("admin")
    user = make_account("customer")
    assert client.get("/api/admin/notifications/999", headers=admin.headers).status_code == 404
    r = client.put(f"/api/admin/users/{user.id}/active", json={"active": False}, headers=admin.headers)
    assert r.status_code == 200, r.text
    items = client.get("/api/admin/audit", params={"user_id": user.id, "action": "user.sessions_revoked"},
                       headers=admin.headers).json()["items"]
    assert [(e["actor_id"], e["data"]["reason"]) for e in items] == [(admin.id, "deactivated")]


def test_outbox_row_view_is_recorded(client):
    from booking_app import db
    from booking_app.services import outbox

    admin = make_account("admin")
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="x@example.com", template="password_reset", locale="en",
                       context={}, dedupe_key="audit-test")
    listed = client.get("/api/admin/notifications", headers=admin.headers).json()["items"]
    nid = listed[0]["id"]
    assert client.get(f"/api/admin/notifications/{nid}", headers=admin.headers).status_code == 200
    assert _actions(action="notification.viewed") == ["notification.viewed"]


@pytest.mark.postgres
def test_postgres_trigger_refuses_update_and_delete_but_account_deletion_works(pg_db):
    import psycopg

    from booking_app.api import create_api

    user = make_account("customer")
    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] >= 1
        for sql in ("UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(sql)
    with TestClient(create_api(), raise_server_exceptions=False) as c:
        r = c.request("DELETE", "/api/users/profile", json={"current_password": PASSWORD}, headers=user.headers)
        assert r.status_code == 204, r.text
    with psycopg.connect(raw, autocommit=True) as conn:
        actions = [a for (a,) in conn.execute(
            "SELECT action FROM audit_events WHERE actor_id = %s ORDER BY id", (user.id,)).fetchall()]
        assert actions[0] == "user.created" and actions[-1] == "user.deleted"
        assert conn.execute("SELECT count(*) FROM audit_events WHERE action = 'forged'").fetchone()[0] == 0
