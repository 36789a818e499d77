"""A wall clock that does not leap with the system clock.

The bot dates sessions, fills and the synthetic market by the wall clock, but a system clock
set two days ahead for a minute must not open a session two days ahead, nor make the
synthetic market generate two days of prices at once. ``SteadyClock`` follows the system
clock while it agrees with the time elapsed on the monotonic clock (within a tolerance, so
that small NTP corrections are followed), and keeps to the monotonic clock while it does
not, naming the jump for the heartbeat until the system clock agrees again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

JUMP_TOLERANCE_SECONDS = 5.0


class SteadyClock:
    """Milliseconds since the epoch, never moving backwards nor leaping with the system clock."""

    def __init__(self, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 tolerance: float = JUMP_TOLERANCE_SECONDS) -> None:
        self._wall, self._monotonic, self._tolerance = wall, monotonic, tolerance
        self._anchor = (wall(), monotonic())
        self._last_ms = int(self._anchor[0] * 1000)
        self.skew_seconds = 0.0  # system clock minus steady time while they disagree

    def __call__(self) -> int:
        wall, mono = self._wall(), self._monotonic()
        steady = self._anchor[0] + (mono - self._anchor[1])
        self.skew_seconds = wall - steady
        if abs(self.skew_seconds) <= self._tolerance:
            self.skew_seconds, self._anchor, steady = 0.0, (wall, mono), wall
        self._last_ms = max(self._last_ms, int(steady * 1000))
        return self._last_ms

    def jump_note(self) -> str | None:
        """What is wrong with the system clock, in words, or None while it agrees."""
        if not self.skew_seconds:
            return None
        return (f"system clock jumped {describe_seconds(self.skew_seconds)}: "
                "the bot keeps the steady time until it agrees again")


def describe_seconds(seconds: float) -> str:
    """``+2d 0h 0m``, ``-3m 20s``: a signed span for a message."""
    sign, left = ("+" if seconds >= 0 else "-"), int(abs(seconds))
    days, left = divmod(left, 86_400)
    hours, left = divmod(left, 3_600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{sign}{days}d {hours}h {minutes}m"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m {secs}s"
