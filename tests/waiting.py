"""Waiting in tests: on a condition with a generous deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for[T](predicate: Callable[[], T], timeout: float = 60.0, every: float = 0.2) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value; fail after
    ``timeout`` seconds (a deadline for a hung test, never a measure of speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout:g} s")
