"""What the loop last read from or wrote to its own rows, so a step can skip doing it again.

The loop read back, at every iteration, rows only it writes (the newest stored candle, the
booked fill ids of the sync window) and rewrote snapshots that had not changed; that was
most of the statements of the steps around the decision. Each copy starts empty, so the
first use after a start reads or writes the database as before, and a written value is
recorded only after the transaction that wrote it committed: a SIGKILL or a failed commit
can leave a copy missing, never wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from db.engine import bound_engine
from db.models import Order, TradePlan
from db.writes import ReadCache, write_clock

# (trading session id, symbol, timeframe): the newest stored candle as
# (timestamp, open, high, low, close, volume), or None when none is stored
CandleKey = tuple[int, str, str]
CandleTip = tuple[datetime, Any, Any, Any, Any, Any] | None


@dataclass
class StoreMirror:
    candle_tips: dict[CandleKey, CandleTip] = field(default_factory=dict)
    # venue trade ids of the current sync window known to be booked in ``trades``
    booked_fills: set[str] = field(default_factory=set)
    # (trading session id, rows) last committed to the snapshot tables; positions without
    # their timestamp, which every write refreshes
    open_orders: tuple[int, list[dict[str, Any]]] | None = None
    positions: tuple[int, list[tuple[str, float, float]]] | None = None
    # False once a read found none of this run's orders live, until a transaction that
    # wrote orders commits; see ``watch``
    orders_may_be_live: bool = True
    # the run's active plans as last read (detached, loaded), until a transaction that
    # wrote plans commits (None: read them again); see ``watch``
    active_plans: list[TradePlan] | None = None
    # the decision context's reads of rows that seldom change, kept while no committed
    # transaction wrote their tables (``db.writes``); set by ``watch``
    reads: ReadCache | None = None

    def watch(self, sessions: sessionmaker) -> None:
        """Re-arm the order flag and forget the plans read whenever a transaction of
        ``sessions`` that wrote orders or plans commits, whichever code wrote them (the
        decision step, commands, fill sync...).

        Only commits do it: a reader cannot have missed rows a transaction still open was
        writing, because that transaction's commit comes after the read. A session that
        rolled a write back and later commits does it too: one needless read.
        """
        event.listen(sessions, "after_flush", _note_writes)
        event.listen(sessions, "after_commit", self._committed)
        self.reads = ReadCache(write_clock(bound_engine(sessions)))

    def _committed(self, session: Session) -> None:
        if session.info.pop(_WROTE_ORDERS, False):
            self.orders_may_be_live = True
        if session.info.pop(_WROTE_PLANS, False):
            self.active_plans = None


_WROTE_ORDERS, _WROTE_PLANS = "mirror: wrote orders", "mirror: wrote plans"


def _note_writes(session: Session, _flush: UOWTransaction) -> None:
    for row in (*session.new, *session.dirty):
        if isinstance(row, Order):
            session.info[_WROTE_ORDERS] = True
        elif isinstance(row, TradePlan):
            session.info[_WROTE_PLANS] = True
