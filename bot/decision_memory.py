"""What the decide step knows of its run's traces without asking the database every step.

Two questions are asked at every decision, and only the decide step changes their answers
(this process is the only writer of its run's traces: ``bot.lock``):

- was a decision already traced at this clock? A restarted runtime redoes the interrupted
  iteration at the same clock and must not decide twice. Only a clock at or before the
  newest traced one can have a trace, so the exact lookup runs only then: on the first
  decision after a restart, not at the later clocks no one has traced yet;
- what have the session's traces cost? One input of the LLM cost cap, summed from the rows
  once per session and then added to as traces are written.

Both are read from the database on first use (the memory is new with every Runtime, so a
restart reads them again) and kept by ``note_trace``, which runs only once a trace is
committed: the memory never runs ahead of the rows, and a kill loses it with the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session as OrmSession

from db.traces import newest_traced_at, traced_at, traced_cost


@dataclass
class DecisionMemory:
    loaded: bool = False
    newest_traced: datetime | None = None  # newest clock with a non-abandoned trace
    cost_session: int | None = None
    cost: float = 0.0  # summed trace cost of ``cost_session``

    def recorded_at(self, db: OrmSession | Connection, session_ids: list[int],
                    now: datetime) -> Row[int, str | None] | None:
        """``traced_at``, without its query at a clock later than every trace of the run."""
        if not self.loaded:
            self.newest_traced, self.loaded = newest_traced_at(db, session_ids), True
        if self.newest_traced is None or now > self.newest_traced:
            return None
        return traced_at(db, session_ids, now)

    def session_cost(self, db: OrmSession | Connection, session_id: int) -> float:
        """The LLM cost of every trace of the session (``db.traces.traced_cost``)."""
        if self.cost_session != session_id:
            self.cost, self.cost_session = traced_cost(db, session_id), session_id
        return self.cost

    def note_trace(self, session_id: int, created_at: datetime, cost: float) -> None:
        """A non-abandoned trace was committed (abandoned ones change neither answer)."""
        if self.loaded and (self.newest_traced is None or created_at > self.newest_traced):
            self.newest_traced = created_at
        if session_id == self.cost_session:
            self.cost += cost
