"""What the operator can be told about: the kinds of event a bot or its watcher notifies.

``NOTIFY_EVENTS`` names them by these values (``bot.alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    """One kind of notification; each kind is rate limited on its own."""

    FILL = "fill"
    PLAN_OPENED = "plan_opened"
    PLAN_CLOSED = "plan_closed"
    BREAKER_TRIPPED = "breaker_tripped"
    BREAKER_RECOVERED = "breaker_recovered"
    LIMIT_REACHED = "limit_reached"  # the LLM cost cap or a daily loss limit
    COMMAND_DONE = "command_done"
    COMMAND_FAILED = "command_failed"
    BOT_DOWN = "bot_down"  # crashed, or its heartbeat stale
    BOT_RECOVERED = "bot_recovered"
    DAILY_SUMMARY = "daily_summary"


# Every fill is also a plan's opening or closing: fills and routine command results are
# left to those who ask for them.
DEFAULT_EVENTS: tuple[EventKind, ...] = tuple(
    kind for kind in EventKind if kind not in (EventKind.FILL, EventKind.COMMAND_DONE)
)


@dataclass(frozen=True)
class Event:
    """One thing that happened, in words, with the bot and mode it happened to."""

    kind: EventKind
    bot: str
    mode: str  # PAPER | LIVE
    text: str

    def line(self) -> str:
        return f"[{self.mode}] {self.bot}: {self.text}"
