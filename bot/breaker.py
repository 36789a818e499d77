"""Circuit breaker: after N consecutive venue errors, entries pause for a cool-down.

Exits and plan enforcement ignore the breaker: a flaky venue must never stop a stop-loss.
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
    # told of each trip and each recovery (``bot.alerts.sink.EventSink.breaker_changed``)
    on_change: Callable[[CircuitBreaker], None] = field(default=_unheard, repr=False)

    def record_error(self, now: datetime) -> None:
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.threshold and not self.is_open(now):
            self.open_until = now + timedelta(seconds=self.cooldown_seconds)
            self.trips += 1
            self.on_change(self)

    def record_success(self, now: datetime) -> None:
        self.consecutive_errors = 0
        self.is_open(now)  # a cool-down that has ended is noticed (and told) at the next answer

    def is_open(self, now: datetime) -> bool:
        if self.open_until is None:
            return False
        if now >= self.open_until:
            self.open_until = None
            self.consecutive_errors = 0
            self.on_change(self)
            return False
        return True
