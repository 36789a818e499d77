"""The rate limit per event kind: the first event of a kind goes at once, later ones wait
until ``min_interval`` has passed since the last message of their kind and then go as one.

Pure (the caller passes the time), so the worker thread and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.model.events import Event, EventKind

MAX_LINES = 40  # a long burst is cut, saying how many more there were


@dataclass(frozen=True)
class Message:
    kind: EventKind
    title: str
    body: str
    events: int


def message(events: list[Event]) -> Message:
    """One event as its own line; a burst as a count in the title and a line each."""
    first = events[0]
    if len(events) == 1:
        return Message(first.kind, first.line(), first.line(), 1)
    lines = [event.line() for event in events[:MAX_LINES]]
    if len(events) > MAX_LINES:
        lines.append(f"... and {len(events) - MAX_LINES} more")
    title = f"{len(events)} {first.kind.replace('_', ' ')} events"
    return Message(first.kind, title, "\n".join(lines), len(events))


class Batcher:
    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._last_sent: dict[EventKind, float] = {}
        self._waiting: dict[EventKind, list[Event]] = {}

    def add(self, event: Event, now: float) -> list[Message]:
        """The messages to send now that ``event`` came (none while its kind waits)."""
        if event.kind in self._waiting:
            self._waiting[event.kind].append(event)
            return []
        last = self._last_sent.get(event.kind)
        if last is not None and now - last < self.min_interval:
            self._waiting[event.kind] = [event]
            return []
        self._last_sent[event.kind] = now
        return [message([event])]

    def due(self, now: float) -> list[Message]:
        """The waiting bursts whose kind may send again by ``now``."""
        ready = [kind for kind in self._waiting
                 if now - self._last_sent[kind] >= self.min_interval]
        for kind in ready:
            self._last_sent[kind] = now
        return [message(self._waiting.pop(kind)) for kind in ready]

    def next_due(self) -> float | None:
        """When the earliest waiting burst may go; None when nothing waits."""
        times = [self._last_sent[kind] + self.min_interval for kind in self._waiting]
        return min(times) if times else None

    def drain(self) -> list[Message]:
        """Everything still waiting, at once (the bot is ending)."""
        messages = [message(events) for events in self._waiting.values()]
        self._waiting.clear()
        return messages
