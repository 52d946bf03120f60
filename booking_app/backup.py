"""Backups and restores of the application's database (`python -m booking_app backup|restore`).

PostgreSQL: `pg_dump -Fc` (custom format: compressed, one consistent snapshot taken while the
app keeps running) and `pg_restore` into an empty database. The client tools must be at least
the server's major version: the ones matching it are looked for in the usual install folders
(or PG_BIN_DIR), then on PATH. The password, if any, goes to them through the environment,
never on the command line.
SQLite: the online backup API (`sqlite3.Connection.backup`): a consistent copy page by page,
while the app keeps reading and writing, into a plain SQLite file; a restore copies it back the
same way.

A restore refuses a target that holds any table unless `force` (which replaces what is there).
It restores the schema revision of the backup: run `migrate` afterwards when the code is newer.
Schedules, retention and the restore procedure: docs/operations.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import pathlib
import shutil
import sqlite3
import subprocess
import time

import psycopg
from sqlalchemy.engine import URL, make_url

from booking_app import db
from booking_app.config import get_settings

#: the first bytes of each kind of backup file
PG_DUMP_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"

#: folders where PostgreSQL's client tools of major version {major} are installed
#: (Debian/Ubuntu, RHEL/Fedora (PGDG), Homebrew on macOS)
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/{major}/bin", "/usr/pgsql-{major}/bin",
                     "/opt/homebrew/opt/postgresql@{major}/bin", "/usr/local/opt/postgresql@{major}/bin")

#: a pg_dump / pg_restore run may take this long (a large database takes minutes)
TOOL_TIMEOUT_SECONDS = 6 * 3600


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    path: pathlib.Path
    kind: str  # "postgresql" | "sqlite"
    bytes: int
    seconds: float
    tables: int  # tables in the database after a restore, in the file after a backup (SQLite)


def _url(url: str | None) -> URL:
    return make_url(url or get_settings().database_url)


def _kind(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return "sqlite"
    if url.get_backend_name() == "postgresql":
        return "postgresql"
    raise BackupError(f"backups support PostgreSQL and SQLite, not {url.get_backend_name()}")


def default_output(url: str | None = None, *, now: dt.datetime | None = None) -> pathlib.Path:
    """`booking-<database>-<UTC time>.dump` (PostgreSQL) or `.sqlite3` (SQLite), here."""
    u = _url(url)
    kind = _kind(u)
    name = pathlib.Path(u.database or "db").stem if kind == "sqlite" else (u.database or "db")
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return pathlib.Path(f"booking-{name}-{stamp}.{'dump' if kind == 'postgresql' else 'sqlite3'}")


def backup(output: str | os.PathLike | None = None, *, url: str | None = None) -> Outcome:
    """Back up the database at `url` (default DATABASE_URL) to `output` (default
    `default_output()`); an existing file is not overwritten."""
    u = _url(url)
    kind = _kind(u)
    path = pathlib.Path(output) if output else default_output(u.render_as_string(hide_password=False))
    if path.exists():
        raise BackupError(f"{path} exists already: choose another --output")
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    partial = path.with_name(path.name + ".partial")
    try:
        if kind == "sqlite":
            tables = _sqlite_copy(_sqlite_path(u, must_exist=True), partial)
        else:
            _run_tool(u, "pg_dump", ["--format=custom", "--no-password", f"--file={partial}"])
            tables = 0
        partial.rename(path)  # (never a half-written file under the final name)
    finally:
        partial.unlink(missing_ok=True)
    return Outcome(path, kind, path.stat().st_size, time.monotonic() - started, tables)


def restore(source: str | os.PathLike, *, url: str | None = None, force: bool = False) -> Outcome:
    """Restore the backup file `source` into the database at `url` (default DATABASE_URL),
    which must be empty (no table) unless `force`: then what is there is replaced."""
    path = pathlib.Path(source)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    u = _url(url)
    kind = _kind(u)
    with open(path, "rb") as fh:
        head = fh.read(16)
    file_kind = "postgresql" if head.startswith(PG_DUMP_MAGIC) else "sqlite" if head == SQLITE_MAGIC else None
    if file_kind is None:
        raise BackupError(f"{path} is neither a pg_dump custom-format archive nor an SQLite database")
    if file_kind != kind:
        raise BackupError(f"{path} is a {file_kind} backup but DATABASE_URL is a {kind} database")
    db.dispose_engines()  # (this process's own connections; the app should be stopped)
    started = time.monotonic()
    if kind == "sqlite":
        target = _sqlite_path(u, must_exist=False)
        if _sqlite_tables(target) and not force:
            raise BackupError(f"{target} is not empty: restore into a new file, or pass --force to replace it")
        _sqlite_restore(path, target)
    else:
        if _pg_tables(u) and not force:
            raise BackupError(f"database {u.database!r} is not empty: restore into a new, empty database "
                              "(createdb), or pass --force to replace what is in it")
        args = ["--no-password", "--no-owner", "--exit-on-error", "--single-transaction"]
        if force:
            args += ["--clean", "--if-exists"]
        _run_tool(u, "pg_restore", [*args, str(path)])
    tables = _sqlite_tables(_sqlite_path(u, must_exist=True)) if kind == "sqlite" else _pg_tables(u)
    return Outcome(path, kind, path.stat().st_size, time.monotonic() - started, tables)


# --- SQLite ---------------------------------------------------------------------------------------

def _sqlite_path(u: URL, *, must_exist: bool) -> pathlib.Path:
    if not u.database or u.database == ":memory:":
        raise BackupError("an in-memory SQLite database can't be backed up or restored")
    path = pathlib.Path(u.database)
    if must_exist and not path.is_file():
        raise BackupError(f"{path}: no such SQLite database")
    return path


def _sqlite_tables(path: pathlib.Path) -> int:
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            "AND name NOT LIKE 'sqlite_%'").fetchone()[0]


def _sqlite_copy(source: pathlib.Path, dest: pathlib.Path) -> int:
    """Online backup of `source` into a new file `dest` (consistent even while written to)."""
    busy_ms = get_settings().sqlite_busy_timeout_ms
    with contextlib.closing(sqlite3.connect(source, timeout=busy_ms / 1000)) as src, \
            contextlib.closing(sqlite3.connect(dest)) as dst:
        src.backup(dst, pages=1024, sleep=0.005)  # in steps: the app's writers get turns in between
        dst.execute("PRAGMA journal_mode=DELETE")  # (one self-contained file)
        return dst.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                           "AND name NOT LIKE 'sqlite_%'").fetchone()[0]


def _sqlite_restore(backup_file: pathlib.Path, target: pathlib.Path) -> None:
    with contextlib.closing(sqlite3.connect(backup_file)) as src:
        check = src.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{backup_file} is damaged: {check}")
        target.parent.mkdir(parents=True, exist_ok=True)
        busy_ms = get_settings().sqlite_busy_timeout_ms
        with contextlib.closing(sqlite3.connect(target, timeout=busy_ms / 1000)) as dst:
            src.backup(dst)  # replaces every page of the target, whatever was there


# --- PostgreSQL -----------------------------------------------------------------------------------

def _libpq(u: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it."""
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    plain = u.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg_connect(u: URL) -> psycopg.Connection:
    conninfo, _env = _libpq(u)
    try:
        return psycopg.connect(conninfo, password=u.password or None, autocommit=True,
                               connect_timeout=get_settings().db_connect_timeout_seconds)
    except psycopg.OperationalError as exc:
        raise BackupError(f"can't connect to database {u.database!r}: {str(exc).strip().splitlines()[-1]}") from None


def _pg_tables(u: URL) -> int:
    with _pg_connect(u) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                           ).fetchone()
        return int(row[0]) if row else 0


def _server_major(u: URL) -> int:
    with _pg_connect(u) as conn:
        return conn.info.server_version // 10000


def _tool_major(binary: str) -> int | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    digits = out.strip().split()[-1].split(".")[0] if out.strip() else ""
    return int(digits) if digits.isdigit() else None


def find_tool(name: str, server_major: int) -> str:
    """The `name` binary (pg_dump, pg_restore) to use with a server of `server_major`:
    PG_BIN_DIR if set, else the install folder of that major version, else PATH's — if it is
    not older than the server. BackupError (saying what to install) when there is none."""
    configured = get_settings().pg_bin_dir
    candidates = [pathlib.Path(configured) / name] if configured else \
        [pathlib.Path(c.format(major=server_major)) / name for c in PG_BIN_CANDIDATES]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    if configured:
        raise BackupError(f"{name} not found in PG_BIN_DIR ({configured})")
    on_path = shutil.which(name)
    if on_path:
        major = _tool_major(on_path)
        if major is not None and major >= server_major:
            return on_path
        raise BackupError(f"{on_path} is version {major}, older than the server ({server_major}): install the "
                          f"PostgreSQL {server_major} client tools, or set PG_BIN_DIR to their folder")
    raise BackupError(f"{name} not found: install the PostgreSQL {server_major} client tools "
                      "(pg_dump, pg_restore), or set PG_BIN_DIR to their folder")


def _run_tool(u: URL, name: str, args: list[str]) -> None:
    binary = find_tool(name, _server_major(u))
    conninfo, env = _libpq(u)
    try:
        done = subprocess.run([binary, f"--dbname={conninfo}", *args], env=env, capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{name} did not finish within {TOOL_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        raise BackupError(f"{name} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
