"""Running one step in several threads at once, for the tests of what must hold when
requests, jobs or sign-ups race (the booking races have their own `race` in
tests/test_concurrency.py, which sorts the outcomes the booking service gives)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_together(n: int, step: Callable[[int], Any], *, timeout: float = 60.0) -> tuple[list, list[BaseException]]:
    """`step(i)` for i in range(n), each in a thread of its own, all released at once (a
    barrier); waits for them and fails when one still runs after `timeout` s.
    → (what the steps returned, the exceptions they raised), each in the order they ended."""
    barrier = threading.Barrier(n)
    results: list = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results.append(step(i))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"a step still runs after {timeout:.0f} s"
    return results, errors
