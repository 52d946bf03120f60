"""Helpers shared by the bench scripts: ports, throwaway databases, pointing the app at one."""
from __future__ import annotations

import os
import pathlib
import socket
import sys
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_url() -> str:
    """The PostgreSQL maintenance database to create bench databases from (libpq URL)."""
    url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database(prefix: str = "booking_bench") -> tuple[str, str]:
    """A fresh database: (name, SQLAlchemy URL)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url().rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def point_at(url: str) -> None:
    """Point this process's settings and engines at `url`."""
    from booking_app import db
    from booking_app.config import reset_settings_cache

    os.environ["DATABASE_URL"] = url
    reset_settings_cache()
    db.dispose_engines()


def migrate(url: str) -> None:
    from alembic import command

    from booking_app import cli

    point_at(url)
    cfg = cli.alembic_config()
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
