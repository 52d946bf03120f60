"""Browser tests: one `reflex run --env prod` per test session, on a free port, with its
own freshly migrated and seeded SQLite database; Playwright on the system Chromium.

- `live_server`: base URL of the running app (started once, process group killed at the end).
  Payments go to a local Stripe stub (`stripe_stub`, tests/stubs/stripe_stub.py): card and
  PayPal are offered next to pay on site, exactly like a production setup with Stripe.
- `size`: "desktop" (1280×800) and "phone" (390×844); tests using `page` run at both.
- `page`: a fresh browser context per test at that size, base_url set; console errors and
  uncaught page errors are collected in `page.console_errors`.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3
import subprocess

import pytest

from bench._common import (CHROMIUM_ARGS, http_status, reflex_env, scratch_app, start_reflex, stop_process_group,
                           venv_python)
from tests.conftest import ROOT, free_port

SIZES = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
START_TIMEOUT = float(os.environ.get("BROWSER_SERVER_TIMEOUT", "300"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def _server_env(db_url: str, stripe=None) -> dict[str, str]:
    """The environment of the app under test (bench/_common.py's, as bench_ui uses it)."""
    extra = {"ENVIRONMENT": "test"}
    if stripe is not None:
        extra.update(STRIPE_SECRET_KEY="sk_test_browser", STRIPE_WEBHOOK_SECRET=stripe.webhook_secret,
                     STRIPE_API_BASE=stripe.url, STRIPE_PAYMENT_METHODS="card,paypal")
    return reflex_env(db_url, **extra)


_get = http_status


@pytest.fixture(scope="session")
def stripe_stub():
    from tests.stubs.stripe_stub import StripeStub

    with StripeStub() as stub:
        yield stub


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, stripe_stub):
    workdir = tmp_path_factory.mktemp("live-server")
    db_url = f"sqlite:///{workdir / 'browser.db'}"
    env = _server_env(db_url, stripe_stub)
    for command in ("migrate", "seed-demo"):
        subprocess.run([venv_python(), "-m", "booking_app", command], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=180)
    port = free_port()
    proc = start_reflex(ROOT, env, port, workdir / "reflex.log", timeout=START_TIMEOUT)
    LIVE_DATABASES[f"http://127.0.0.1:{port}"] = workdir / "browser.db"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="session")
def shared_scratch_tree(tmp_path_factory):
    """One copy of the project (sources only, bench/_common.scratch_app) for the tests that start
    app processes of their own, one after another (never the shared `.web/`): the first build
    installs the frontend's packages in its `.web/`, the later builds reuse them."""
    dest = scratch_app(tmp_path_factory.mktemp("scratch-app") / "app")
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


#: live server URL → its SQLite file (for resetting what one test leaves in shared demo accounts)
LIVE_DATABASES: dict[str, pathlib.Path] = {}


@pytest.fixture(autouse=True)
def demo_accounts_back_in_english(request):
    """The demo accounts are shared by the browser tests, and switching the language while
    signed in saves it to the account: after each test, they speak English again."""
    yield
    if "live_server" not in request.fixturenames:
        return
    database = LIVE_DATABASES.get(request.getfixturevalue("live_server"))
    if database is not None and database.exists():
        with sqlite3.connect(database, timeout=30) as conn:
            conn.execute("UPDATE users SET locale = 'en' WHERE username IN ('admin', 'provider', 'customer')")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    return request.param


def new_page(browser, base_url: str, size: str | dict[str, int], locale: str = "en-US"):
    """A page in a new context at a named size (SIZES) or a {"width", "height"} viewport."""
    context = browser.new_context(viewport=SIZES[size] if isinstance(size, str) else size, locale=locale,
                                  base_url=base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors  # type: ignore[attr-defined]
    return context, page


@pytest.fixture
def page(browser, live_server, size):
    context, page = new_page(browser, live_server, size)
    yield page
    context.close()


@pytest.fixture
def open_page(browser, live_server, size):
    """Open more pages (other users, other languages) at the test's size."""
    contexts = []

    def _open(locale: str = "en-US"):
        context, pg = new_page(browser, live_server, size, locale)
        contexts.append(context)
        return pg

    yield _open
    for context in contexts:
        context.close()
