"""Circuit breaker: after N consecutive venue errors, entries pause for a cool-down.

Exits and plan enforcement ignore the breaker: a flaky venue must never stop a stop-loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class CircuitBreaker:
    threshold: int
    cooldown_seconds: float
    consecutive_errors: int = 0
    open_until: datetime | None = None
    trips: int = 0

    def record_error(self, now: datetime) -> None:
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.threshold and not self.is_open(now):
            self.open_until = now + timedelta(seconds=self.cooldown_seconds)
            self.trips += 1

    def record_success(self) -> None:
        self.consecutive_errors = 0

    def is_open(self, now: datetime) -> bool:
        if self.open_until is None:
            return False
        if now >= self.open_until:
            self.open_until = None
            self.consecutive_errors = 0
            return False
        return True
