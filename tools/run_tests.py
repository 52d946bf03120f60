"""The whole test suite as `make test` runs it: two pytest processes side by side.

- the browser tests (tests/browser/: one `reflex run --env prod`, Chromium), one at a time;
- everything else, spread over pytest-xdist workers (`--dist loadgroup`: the test files that
  share a server-wide resource, tests/conftest.py's XDIST_GROUPS, run in one worker).

The browser lane runs in a process of its own because Playwright's sync API keeps an event
loop for the session, which must never surround the other tests. Its output is written to a
log and printed when both lanes are done; the exit status is the worse of the two (pytest's
"no tests collected" counts as success when the other lane ran something).

Arguments (`make test PYTEST_ARGS=...`) that choose tests (a path, `-k`, `-m`) make it a plain
`pytest <args>`, a developer's targeted run in one process; other options go to both lanes.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NO_TESTS = 5


def _workers() -> str:
    """The other lane's xdist workers: TEST_WORKERS, else one per CPU (at most 4; the tests
    wait on databases, servers and sleeps much of the time, so the lanes share the CPUs well)."""
    wanted = os.environ.get("TEST_WORKERS", "").strip()
    if wanted:
        return wanted
    return str(max(1, min(4, os.cpu_count() or 2)))


def _chooses_tests(argv: list[str]) -> bool:
    return any(arg in ("-k", "-m") or arg.startswith(("-k", "-m")) and not arg.startswith("--")
               or (ROOT / arg.split("::")[0]).exists() for arg in argv)


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if _chooses_tests(argv):
        return subprocess.call([*pytest, *argv], cwd=ROOT)
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w+", prefix="browser-tests-", suffix=".log", delete=False) as log:
        browser = subprocess.Popen([*pytest, "-m", "browser", "-p", "no:xdist", *argv], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
        print(f"browser tests running beside the others (their output follows at the end: {log.name})",
              flush=True)
        try:
            rest = subprocess.call([*pytest, "-m", "not browser", "-n", _workers(), "--dist", "loadgroup", *argv],
                                   cwd=ROOT)
        except KeyboardInterrupt:
            browser.terminate()
            raise
        if browser.poll() is None:
            print("\nwaiting for the browser tests ...", flush=True)
        browser_rc = browser.wait()
        log.seek(0)
        print("\n" + "=" * 30 + " browser tests " + "=" * 30, flush=True)
        sys.stdout.write(log.read())
    os.unlink(log.name)
    codes = [rest, browser_rc]
    if all(code == NO_TESTS for code in codes):
        status = NO_TESTS
    else:
        status = max(code for code in codes if code != NO_TESTS)
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    print(f"\nwhole suite: {'passed' if status == 0 else f'FAILED (exit {status})'} in {minutes} min {seconds} s "
          f"(other tests: exit {rest}, browser tests: exit {browser_rc})", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
