"""Is the OpenAPI document true? Schemathesis' command line, as an external client sees the API.

    .venv/bin/python tools/openapi_conformance.py [--max-examples 8] [--roles anonymous,customer,provider,admin]
                                                  [--checks all] [--seed 1] [--json results.json]

Migrates a throwaway SQLite database, loads the demo data (`seed-demo`: one admin, provider and
customer, bookables with availability and sessions), serves `booking_app.api:api` with uvicorn on
a free local port (rate limits and background jobs off) and runs `st run --checks all` once per
role, each signed in as that role's demo user. Prints the failures per check and role (distinct
operation + failure title) and exits non-zero when a check that judges the document failed: all
but positive_data_acceptance, which wants every schema-valid request accepted while the services
refuse, with a documented 422, meaning no schema can express (an unknown time zone, a range that
ends before it starts, a weak password). See docs/security-testing.md for the figures of a run.

The same file is the Schemathesis hooks module of those runs (SCHEMATHESIS_HOOKS): its auth
provider signs in as the role's user and signs in again whenever an answer is 401; when signing
in fails (a generated request deactivated the user, or an admin demoted itself after promoting
someone else), it restores the demo user (active, its role and password) in the throwaway database
first, so one generated request doesn't blind the rest of the run.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROLES = ("anonymous", "customer", "provider", "admin")
#: counted and printed, but not a verdict on the document (see the module docstring)
NOT_JUDGED = frozenset({"positive_data_acceptance"})
#: the demo users of booking_app/services/demo.py
CREDENTIALS = {
    "admin": ("admin", "demo-admin-pass"),
    "provider": ("provider", "demo-provider-pass"),
    "customer": ("customer", "demo-customer-pass"),
}
USER_ENV, PASSWORD_ENV, BASE_ENV = "OPENAPI_CHECK_USER", "OPENAPI_CHECK_PASSWORD", "OPENAPI_CHECK_BASE"
ROLE_ENV = "OPENAPI_CHECK_ROLE"


def _restore_user(username: str, password: str, role: str) -> None:
    """Put the demo user back as seeded (in the throwaway database of this run)."""
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services.passwords import hash_password

    with db.unit_of_work() as s:
        user = s.exec(select(User).where(User.username == username)).one()
        user.is_active, user.role, user.password_hash = True, role, hash_password(password)
        s.add(user)


def _login(base: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/users/login", data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


if __name__ != "__main__" and os.environ.get(USER_ENV):
    # loaded by Schemathesis as its hooks module: sign in as this run's role
    import schemathesis

    @schemathesis.auth(refresh_interval=600)
    class _RoleAuth:
        def get(self, case, context):
            base, username, password = os.environ[BASE_ENV], os.environ[USER_ENV], os.environ[PASSWORD_ENV]
            try:
                return _login(base, username, password)
            except urllib.error.HTTPError:
                _restore_user(username, password, os.environ[ROLE_ENV])
                return _login(base, username, password)

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the API server did not answer /api/health in time")


def _failures(report: pathlib.Path) -> collections.Counter:
    """Failures per check name from a Schemathesis NDJSON event stream (one per distinct failure)."""
    counts: collections.Counter = collections.Counter()
    seen: set[tuple[str, str, str]] = set()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for name, body in event.items():
            if name != "ScenarioFinished":
                continue
            label = body.get("recorder", {}).get("label", "")
            for checks in body.get("recorder", {}).get("checks", {}).values():
                for check in checks:
                    if check.get("status") == "failure":
                        failure = check.get("failure_info") or {}
                        title = (failure.get("failure") or {}).get("title", "")
                        key = (check["name"], label, title)
                        if key not in seen:
                            seen.add(key)
                            counts[check["name"]] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--checks", default="all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", default="2")
    parser.add_argument("--json", help="write {role: {check: failures}} here")
    parser.add_argument("--keep", action="store_true", help="keep the reports (printed path)")
    args = parser.parse_args(argv)
    roles = [r for r in args.roles.split(",") if r]
    python = sys.executable
    work = pathlib.Path(tempfile.mkdtemp(prefix="openapi-conformance-"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'booking.db'}", "RATE_LIMITS_ENABLED": "false",
           "JOBS_ENABLED": "false", "ENVIRONMENT": "development", "PYTHONPATH": str(ROOT)}
    for command in ("migrate", "seed-demo"):
        with open(work / "setup.log", "a") as log:
            subprocess.run([python, "-m", "booking_app", command], cwd=ROOT, env=env, check=True,
                           stdout=log, stderr=log)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [python, "-m", "uvicorn", "booking_app.api:api", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))
    results: dict[str, dict[str, int]] = {}
    try:
        _wait_until_up(base, server)
        st = pathlib.Path(python).with_name("st")
        for role in roles:
            report = work / f"{role}.ndjson"
            run_env = {**env, "SCHEMATHESIS_HOOKS": str(pathlib.Path(__file__).resolve()), BASE_ENV: base}
            if role in CREDENTIALS:
                run_env[USER_ENV], run_env[PASSWORD_ENV] = CREDENTIALS[role]
                run_env[ROLE_ENV] = role
            else:
                run_env.pop(USER_ENV, None)
            completed = subprocess.run(
                [str(st), "run", f"{base}/api/openapi.json", "--checks", args.checks, "-n", str(args.max_examples),
                 "--seed", str(args.seed), "--workers", args.workers, "--no-color", "--generation-database", "none",
                 "--report", "ndjson", "--report-ndjson-path", str(report)],
                cwd=work, env=run_env, capture_output=True, text=True)
            (work / f"{role}.out").write_text(completed.stdout + completed.stderr)
            results[role] = dict(sorted(_failures(report).items())) if report.exists() else {"(no report)": 1}
            errors = re.search(r"(\d+) errors?\b", completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else "")
            if errors:  # a run that could not test everything (e.g. sign-in failed) is no verdict
                results[role]["(run errors)"] = int(errors.group(1))
            print(f"{role:<10} exit {completed.returncode}  " +
                  (", ".join(f"{name} {n}" for name, n in results[role].items()) or "no failures"), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    totals: collections.Counter = collections.Counter()
    for counts in results.values():
        totals.update(counts)
    print("total      " + (", ".join(f"{name} {n}" for name, n in sorted(totals.items())) or "no failures"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.keep:
        print(f"reports in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if set(totals) - NOT_JUDGED else 0


if __name__ == "__main__":
    sys.exit(main())
