"""Waiting out a database that is unreachable, locked or full, instead of exiting.

A PostgreSQL restart, a server that is down for a while, a SQLite write lock held past the
busy timeout and a full disk all end by themselves or by an operator's hand; a bot that
exits on them needs a person to start it again (its supervisor treats a bad setting as
final). ``Outage.run`` retries a database touch with capped, jittered exponential backoff
until it goes through, logs the wait and its end, and counts what it survived. A login that
is refused, a database that does not exist or a read-only file are settings to fix, not
outages: those errors pass through unchanged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

T = TypeVar("T")
log = logging.getLogger("tradedesk.retry")

# SQLite: contention and a full disk pass; "unable to open" and "readonly" are settings
_SQLITE_OUTAGE_WORDS = ("database is locked", "database table is locked",
                        "database or disk is full", "disk i/o error")
# PostgreSQL: the login, the role or the database named in DATABASE_URL is wrong
_SETTING_WORDS = ("password authentication failed", "authentication failed", "does not exist",
                  "no pg_hba.conf entry", "role ", "invalid dsn", "invalid connection option")
# SQLSTATE classes of a server that is going away, starting, overloaded or out of disk
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is the database being unreachable, locked or full (for now)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    if any(word in text for word in _SQLITE_OUTAGE_WORDS):
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state:
        return str(state)[:2] in _OUTAGE_SQLSTATE_CLASSES
    module = type(exc.orig).__module__
    # psycopg gives no SQLSTATE for a failed connect: refused, reset, timed out, or a login
    return module.startswith("psycopg") and not any(word in text for word in _SETTING_WORDS)


def described(exc: BaseException) -> str:
    """The driver's own first line: no SQL, parameters or traceback."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"


@dataclass
class Outage:
    """Retries database touches through outages; ``sleep`` and ``clock`` are injectable."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    # called with the wait's text before each sleep (e.g. to try a 'db-outage' heartbeat);
    # its own failures are ignored, the database being down
    on_wait: Callable[[str], None] | None = None
    # called before each retry of a touch, as part of it: what the outage left to write
    # (exits sent meanwhile) goes to the database first; an outage error in it waits on
    before_retry: Callable[[], None] | None = None
    survived: int = 0
    resume_seconds: list[float] = field(default_factory=list)
    waits: int = 0
    down_since: float | None = None
    last_error: str | None = None

    def delay(self, attempt: int) -> float:
        """Exponential from ``first_delay_s``, capped at ``max_delay_s``, jittered down to
        half so bots that lost the same server do not all come back at the same instant."""
        ceiling = min(self.max_delay_s, self.first_delay_s * 2 ** min(attempt, 30))
        return self.rng.uniform(ceiling / 2, ceiling)

    def run(self, what: str, touch: Callable[[], T]) -> T:
        """``touch()``, retried until it goes through; errors other than an outage raise."""
        attempt = 0
        while True:
            try:
                if attempt and self.before_retry is not None:
                    self.before_retry()
                result = touch()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._wait(what, exc, attempt)
                attempt += 1
                continue
            if self.down_since is not None:
                self._resumed(what)
            return result

    def _wait(self, what: str, exc: BaseException, attempt: int) -> None:
        if self.down_since is None:
            self.down_since = self.clock()
        delay = self.delay(attempt)
        self.last_error = f"db-outage: {what}: {described(exc)}"
        log.warning("%s; retrying in %.1fs (attempt %d)", self.last_error, delay, attempt + 1)
        if self.on_wait is not None:
            try:
                self.on_wait(self.last_error)
            except Exception as beat_error:  # the database is down: expected
                log.debug("outage heartbeat not written: %s", described(beat_error))
        self.waits += 1
        self.sleep(delay)

    def _resumed(self, what: str) -> None:
        assert self.down_since is not None
        waited = self.clock() - self.down_since
        self.survived += 1
        self.resume_seconds.append(waited)
        log.warning("database is back (%s) after %.1fs; resuming", what, waited)
        self.down_since = None
