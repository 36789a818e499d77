"""Who notices a dead bot: a bot cannot tell of its own crash, so its heartbeat is watched.

``FleetWatch`` turns each look at a bot's state into an alert once per incident (stale or
crashed) and another when the bot is back; the console's supervisor feeds it the bot it
runs, and ``python -m bot watch`` (``watch_fleet``) every bot of a database. A one-look
watch (``--once``, from cron) keeps the incidents it told in a file for its next look.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from bot.alerts.sink import EventSink
from bot.config import Settings
from bot.fleet import fleet_states
from bot.model.events import Event, EventKind
from bot.supervisor import BotState
from db.retry import described, is_outage

log = logging.getLogger("tradedesk.watch")
DOWN_STATES = ("stale", "crashed")
WATCH_EVERY_SECONDS = 15.0


def down_text(state: BotState) -> str:
    if state.state == "crashed":
        error = (state.last_error or "").strip().splitlines()[-1:] or ["no error recorded"]
        return f"crashed: its process is gone (last error: {error[0][:300]})"
    age = "never beat" if state.heartbeat_age_s is None else (
        f"last heartbeat {state.heartbeat_age_s:.0f} s ago")
    return f"heartbeat stale: {age}; it may be hung or its machine lost"


class FleetWatch:
    def __init__(self, tell: Callable[[Event], None], sink: EventSink | None = None,
                 down: dict[str, str] | None = None) -> None:
        self.tell = tell
        self.sink = sink  # closed with the watch
        # bot name -> the state its incident began with (``down``: told by an earlier look)
        self.down: dict[str, str] = dict(down or {})

    @classmethod
    def from_settings(cls, settings: Settings,
                      down: dict[str, str] | None = None) -> FleetWatch | None:
        """A watch that notifies through NOTIFY_URLS; None when none is set."""
        sink = EventSink.from_settings(settings)
        return cls(sink.tell, sink, down) if sink.delivery is not None else None

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

    def observe(self, name: str, state: BotState) -> None:
        """One look at ``name``: a new incident, its end, or nothing to say."""
        began = self.down.get(name)
        mode = state.mode or "?"
        if state.state in DOWN_STATES:
            if began is None:
                self.down[name] = state.state
                self.tell(Event(EventKind.BOT_DOWN, name, mode, down_text(state)))
            return
        if began is not None:
            del self.down[name]
            self.tell(Event(EventKind.BOT_RECOVERED, name, mode,
                            f"is {state.state} again (it was {began})"))

    def sweep(self, db: sessionmaker, now: datetime) -> None:
        """Look at every bot of the database once."""
        with db() as session:
            entries = fleet_states(session, now)
        for entry in entries:
            self.observe(entry.row.name, entry.state)


def load_incidents(path: Path) -> dict[str, str]:
    """The incidents an earlier look told; none when the file is missing or unreadable."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def save_incidents(path: Path, down: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(down, sort_keys=True), encoding="utf-8")


def watch_fleet(db: sessionmaker, watch: FleetWatch, *, every: float = WATCH_EVERY_SECONDS,
                stop: threading.Event | None = None,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Sweep every ``every`` seconds until ``stop`` is set; a database outage is logged and
    the next sweep tries again."""
    stop = stop or threading.Event()
    while True:
        try:
            watch.sweep(db, clock())
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("watch: database unreachable: %s", described(exc))
        if stop.wait(every):
            return
