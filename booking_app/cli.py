"""Command line: `python -m booking_app COMMAND`.

  migrate       bring the database (DATABASE_URL) to the newest schema (alembic upgrade head)
  seed-demo     load the demo users and bookables once
  create-user   --role admin|provider|customer --username U --email E --password P
  run-jobs      run the background jobs (outbox relay, reminders, hold expiry) in the foreground
  backup        [--output FILE] back up the database (PostgreSQL: pg_dump custom format; SQLite: a copy)
  restore       FILE [--force] restore a backup into the (empty) database of DATABASE_URL
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from booking_app import backup
from booking_app.config import get_settings
from booking_app.jobs.scheduler import run_forever
from booking_app.logs import configure_logging
from booking_app.services import accounts
from booking_app.services.demo import seed_demo
from booking_app.services.errors import ServiceError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def alembic_config():
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    return cfg


def migrate(revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(), revision)


def _cmd_migrate(args) -> int:
    migrate(args.revision)
    print(f"database is at {args.revision}: {_redact(get_settings().database_url)}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _cmd_seed_demo(args) -> int:
    result = seed_demo()
    print("demo data loaded" if result.created else "demo data already present (nothing changed)")
    for role, username, password in result.credentials:
        print(f"  {role:<9} username: {username:<10} password: {password}")
    return 0


def _cmd_create_user(args) -> int:
    try:
        user = accounts.create_user(
            username=args.username,
            email=args.email,
            password=args.password,
            role=args.role,
            full_name=args.full_name or "",
        )
    except ServiceError as exc:
        field = f" ({exc.field})" if exc.field else ""
        print(f"error{field}: {exc.translated()}", file=sys.stderr)
        return 2
    print(f"created {user.role} {user.username} (id {user.id})")
    return 0


def _cmd_run_jobs(args) -> int:
    run_forever(once=args.once)
    return 0


def _cmd_backup(args) -> int:
    try:
        done = backup.backup(args.output)
    except backup.BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 2
    print(f"backed up {_redact(get_settings().database_url)} to {done.path} "
          f"({done.kind}, {done.bytes} bytes, {done.seconds:.1f} s)")
    return 0


def _cmd_restore(args) -> int:
    try:
        done = backup.restore(args.file, force=args.force)
    except backup.BackupError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 2
    print(f"restored {done.path} into {_redact(get_settings().database_url)} "
          f"({done.kind}, {done.tables} tables, {done.seconds:.1f} s); "
          "run `python -m booking_app migrate` if this release is newer than the backup")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m booking_app", description="Booking platform commands")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="upgrade the database schema")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("seed-demo", help="load demo users and bookables (once)")
    p.set_defaults(func=_cmd_seed_demo)

    p = sub.add_parser("create-user", help="create a user")
    p.add_argument("--role", required=True, choices=["admin", "provider", "customer"])
    p.add_argument("--username", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--full-name", default="")
    p.set_defaults(func=_cmd_create_user)

    p = sub.add_parser("run-jobs", help="run the background jobs in this process")
    p.add_argument("--once", action="store_true", help="run every job once and exit")
    p.set_defaults(func=_cmd_run_jobs)

    p = sub.add_parser("backup", help="back up the database (pg_dump -Fc, or SQLite's online backup)")
    p.add_argument("--output", "-o", default=None,
                   help="the backup file to write (default: booking-<database>-<UTC time>.dump/.sqlite3 here)")
    p.set_defaults(func=_cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into the empty database of DATABASE_URL")
    p.add_argument("file", help="a file written by `backup`")
    p.add_argument("--force", action="store_true", help="replace what the target database holds")
    p.set_defaults(func=_cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()  # the app's setup: LOG_FORMAT json|text, LOG_LEVEL
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
