"""Foundation: health on both databases, migrations from empty, CLI commands, settings."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from tests.conftest import ROOT, migrate_to_head


def test_health_reports_database_ok(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"


def test_health_503_when_database_unreachable(tmp_path):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from tests.conftest import point_app_at

    point_app_at("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_api(), raise_server_exceptions=False) as c:
        r = c.get("/api/health")
    assert r.status_code == 503
    assert r.json()["database"] == "unreachable"


def test_unknown_path_is_problem_json(client):
    r = client.get("/api/does-not-exist")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body)


def test_openapi_document_served(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    assert "/api/health" in r.json()["paths"]


def test_openapi_declares_bearer_auth_where_a_token_is_read(client):
    """The bearer scheme is documented on exactly the operations that resolve the caller
    (get_actor, directly or through a role check), and POST /api/bookings documents its
    Idempotency-Key header — both without a per-request FastAPI parameter."""
    doc = client.get("/api/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = doc["paths"]
    secured = {(path, method) for path, ops in paths.items() for method, op in ops.items()
               if {"HTTPBearer": []} in op.get("security", [])}  # required, or optional ([{}, bearer])
    for operation in (("/api/bookings", "post"), ("/api/bookings/{id}", "delete"), ("/api/admin/users", "get"),
                      ("/api/services", "get")):
        assert operation in secured
    for operation in (("/api/health", "get"), ("/api/users/login", "post"), ("/api/users/register", "post")):
        assert operation not in secured
    header = [p for p in paths["/api/bookings"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    assert header and header[0]["in"] == "header" and header[0]["schema"]["maxLength"] == 200


def test_response_times_are_documented_as_date_time_and_serialised_in_utc_with_z(client):
    """Every time in a response model is a documented date-time (they were untyped in the
    OpenAPI document before) and goes out in UTC with Z, whatever zone the value is in; a
    response model declaring a plain datetime is refused when it is defined."""
    import datetime as dt

    from booking_app.api.schemas import ApiModel, UtcDateTime

    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert schemas["BookingOut"]["properties"]["start"]["format"] == "date-time"
    assert {"type": "string", "format": "date-time"} in schemas["BookingOut"]["properties"]["hold_expires_at"]["anyOf"]
    assert schemas["UserOut"]["properties"]["created_at"]["format"] == "date-time"

    class Times(ApiModel):
        at: UtcDateTime
        maybe: UtcDateTime | None = None
        many: list[UtcDateTime] = []

    berlin = dt.timezone(dt.timedelta(hours=2))
    out = Times(at=dt.datetime(2026, 6, 1, 12, 0, tzinfo=berlin), maybe=dt.datetime(2026, 6, 1, 12, 0),
                many=[dt.datetime(2026, 6, 1, 12, 0, 0, 500, tzinfo=dt.timezone.utc)]).model_dump(mode="json")
    assert out == {"at": "2026-06-01T10:00:00Z", "maybe": "2026-06-01T12:00:00Z", "many": ["2026-06-01T12:00:00.000500Z"]}
    with pytest.raises(TypeError, match="UtcDateTime"):
        class Bare(ApiModel):  # noqa: F841
            at: dt.datetime | None
    with pytest.raises(TypeError, match="UtcDateTime"):
        class BareList(ApiModel):  # noqa: F841
            at: list[dt.datetime]


def _empty_database(kind: str, tmp_path, request) -> str:
    """The URL of a new, empty SQLite file or PostgreSQL database (dropped after the test)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    import uuid

    from sqlalchemy.engine import make_url

    from tests.conftest import _admin_exec

    server = request.getfixturevalue("pg_server_url")
    name = f"booking_mig_{uuid.uuid4().hex[:8]}"
    _admin_exec(server, f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: _admin_exec(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_from_empty_match_models(kind, tmp_path, request):
    """Upgrade an empty database to head; the schema then has every model table and
    autogenerate finds nothing left to migrate."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool
    from sqlmodel import SQLModel

    import booking_app.models  # noqa: F401

    url = _empty_database(kind, tmp_path, request)
    migrate_to_head(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert set(SQLModel.metadata.tables) <= tables
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
            assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_session_counters_are_filled_from_existing_bookings_by_their_migration(kind, tmp_path, request):
    """Migration 0003 on a database that already has bookings: each session's counter starts
    at its pending and confirmed seats (here: taken back to 0002 and up again), and its
    triggers keep it from there."""
    import datetime as dt

    from alembic import command
    from sqlalchemy import text

    from booking_app import cli, db
    from booking_app.services import bookings
    from booking_app.services.actors import Actor
    from tests.conftest import point_app_at
    from tests.factories import make_event, next_day_at

    url = _empty_database(kind, tmp_path, request)
    migrate_to_head(url)
    old = os.environ.get("DATABASE_URL")
    point_app_at(url)
    try:
        first, second = next_day_at(18), next_day_at(18, days=2)
        event, sessions = make_event(sessions=[first, second], capacity=10)

        def book(start: dt.datetime, q: int, i: int):
            return bookings.book(actor=Actor.guest(), service_id=event.id, start=start, quantity=q,
                                 guest={"name": "G", "email": f"m{i}@example.com"})

        book(first, 2, 1)
        cancelled = book(first, 3, 2)
        book(second, 4, 3)
        bookings.cancel(actor=Actor.system(), booking_id=cancelled.id)
        cfg = cli.alembic_config()
        cfg.attributes["configure_logger"] = False
        db.dispose_engines()
        command.downgrade(cfg, "0002")
        with db.get_engine().begin() as conn:  # (no counter, no trigger: this one is not counted as it happens)
            conn.execute(text("UPDATE bookings SET quantity = 5 WHERE quantity = 4"))
        command.upgrade(cfg, "head")
        db.dispose_engines()

        def counters() -> list[int]:
            with db.get_engine().connect() as conn:
                return [r[0] for r in conn.execute(text("SELECT seats_taken FROM event_sessions ORDER BY start_at"))]

        assert counters() == [2, 5]
        book(second, 1, 4)
        assert counters() == [2, 6]
    finally:
        db.dispose_engines()
        if old:
            point_app_at(old)


def _cli(*args: str, db_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_path}")
    return subprocess.run([sys.executable, "-m", "booking_app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_migrate_seed_and_create_user(tmp_path):
    db_path = tmp_path / "cli.db"
    r = _cli("migrate", db_path=db_path)
    assert r.returncode == 0, r.stderr
    r = _cli("seed-demo", db_path=db_path)
    assert r.returncode == 0, r.stderr
    assert "admin" in r.stdout and "password" in r.stdout
    r = _cli("seed-demo", db_path=db_path)
    assert "already" in r.stdout
    r = _cli("create-user", "--role", "provider", "--username", "prov2", "--email", "p2@example.com",
             "--password", "a-long-enough-pass", db_path=db_path)
    assert r.returncode == 0, r.stderr
    # duplicate username → clear error, non-zero exit
    r = _cli("create-user", "--role", "provider", "--username", "prov2", "--email", "p3@example.com",
             "--password", "a-long-enough-pass", db_path=db_path)
    assert r.returncode == 2 and "already registered" in r.stderr
    # weak password rejected
    r = _cli("create-user", "--role", "customer", "--username", "weak", "--email", "w@example.com",
             "--password", "password1", db_path=db_path)
    assert r.returncode == 2 and "common" in r.stderr
    r = _cli("run-jobs", "--once", db_path=db_path)
    assert r.returncode == 0, r.stderr


def test_settings_refuse_default_secret_in_production(monkeypatch):
    from pydantic import ValidationError

    from booking_app.config import Settings

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    assert Settings().environment == "production"


def test_settings_normalise_postgres_url(monkeypatch):
    from booking_app.config import Settings

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    assert Settings().database_url == "postgresql+psycopg://u:p@h/db"


@pytest.mark.postgres
def test_read_sessions_run_without_a_transaction_and_hand_their_connection_back_transactional(pg_db, monkeypatch):
    """On PostgreSQL a read session's statements each run on their own (no BEGIN round trip
    first); `transaction=True` gives one transaction for SET LOCAL; either way the one pooled
    connection comes back transactional: a failing unit of work on it still rolls back."""
    from sqlalchemy import text
    from sqlmodel import select

    from booking_app import db
    from booking_app.config import reset_settings_cache
    from booking_app.models import AuditEvent

    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    reset_settings_cache()
    db.dispose_engines()
    with db.read_session() as s:
        assert s.connection().connection.driver_connection.autocommit
        assert s.execute(text("SELECT now() = statement_timestamp()")).scalar()  # (a transaction of its own)
    with db.read_session(transaction=True) as s:
        s.execute(text("SET LOCAL jit = off"))
        assert s.execute(text("SHOW jit")).scalar() == "off"
    with pytest.raises(RuntimeError):
        with db.unit_of_work() as s:
            assert not s.connection().connection.driver_connection.autocommit
            s.add(AuditEvent(action="test.rollback", entity="test", entity_id="after-read", data={}))
            s.flush()
            raise RuntimeError("roll back")
    with db.read_session() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.entity_id == "after-read")).all() == []
