"""Circuit breaker: after N consecutive venue errors, entries pause for a cool-down.

A refused API key pauses entries at once (``record_refusal``). Exits and plan enforcement
ignore the breaker: a flaky venue or a refused key must never stop a stop-loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


def _unheard(breaker: CircuitBreaker) -> None:
    """No one listens (the runtime listens with its notifications)."""


@dataclass
class CircuitBreaker:
    threshold: int
    cooldown_seconds: float
    consecutive_errors: int = 0
    open_until: datetime | None = None
    trips: int = 0
    # the venue's words refusing our key, and the call it refused, until that call is taken
    refusal: str | None = None
    refused_call: str | None = None
    # told of each trip and each recovery (``bot.alerts.sink.EventSink.breaker_changed``)
    on_change: Callable[[CircuitBreaker], None] = field(default=_unheard, repr=False)

    def record_error(self, now: datetime) -> None:
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.threshold and not self.is_open(now):
            self.open_until = now + timedelta(seconds=self.cooldown_seconds)
            self.trips += 1
            self.on_change(self)

    def record_refusal(self, now: datetime, call: str, words: str) -> None:
        """The venue refused our key on ``call``: entries pause for a cool-down from each
        refusal. It is told once, until that call is taken again (a key without trading
        permission is refused only on orders: after each cool-down one entry tries it)."""
        self.open_until = now + timedelta(seconds=self.cooldown_seconds)
        if self.refusal is None:
            self.refusal, self.refused_call = words, call
            self.trips += 1
            self.on_change(self)

    def record_success(self, now: datetime, call: str | None = None) -> None:
        """A venue answer to ``call``; the call a refusal named, taken, ends the refusal."""
        self.consecutive_errors = 0
        if self.refusal is not None and call == self.refused_call:
            self.refusal = self.refused_call = None
            self.open_until = None
            self.on_change(self)
            return
        self.is_open(now)  # a cool-down that has ended is noticed (and told) at the next answer

    def is_open(self, now: datetime) -> bool:
        if self.open_until is None:
            return False
        if now >= self.open_until:
            self.open_until = None
            self.consecutive_errors = 0
            if self.refusal is None:  # a refused key is told recovered once it is taken
                self.on_change(self)
            return False
        return True
