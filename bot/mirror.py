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

from sqlalchemy import Row, event
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from db.decision_queries import MARKET_FIGURES, SessionCandles
from db.models import Order, SessionStatsCache, TradePlan
from db.models import Session as TradingSession
from db.stats import WROTE_FIGURES

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
    # the clock ``positions`` was last committed as of (their exchange_timestamp)
    positions_at: datetime | None = None
    # False once a read found none of this run's orders live, until a transaction that
    # wrote orders commits; see ``watch``
    orders_may_be_live: bool = True
    # the run's active plans as last read (detached, loaded), until a transaction that
    # wrote plans commits (None: read them again); see ``watch``
    active_plans: list[TradePlan] | None = None
    # (trading session id, symbol): the series' newest market_data row, by (timestamp, id),
    # as ``db.decision_queries.newest_market`` returns it (None: there is none); an absent
    # key is unknown. Read once by the decide step, then kept by ``note_market``.
    market_rows: dict[tuple[int, str], dict[str, Any] | None] = field(default_factory=dict)
    # (trading session id, its trade count, its newest fills as
    # ``db.decision_queries.newest_trades`` returns them) as the decide step last read them;
    # they stand while the session's figures count as many trades (a fill is counted in the
    # transaction that books it, ``db.trades.record_trade``)
    newest_trades: tuple[int, int, list[dict[str, Any]]] | None = None
    # (trading session id, its figures as ``db.decision_queries.session_figures`` returns
    # them) as the decide step last read them, until a transaction that changed them
    # commits; see ``watch``. The decide step forgets them itself once it adds an LLM cost
    # (on a connection, not in a session of the runtime's).
    figures: tuple[int, Row] | None = None
    # (trading session id, its stored candles of the series the loop stores): read whole by
    # the decide step the first time, or begun by ``note_candles`` when the session had
    # none, then kept by ``note_candles``, the market-data step being their only writer
    candles: tuple[int, SessionCandles] | None = None

    def note_market(self, session_id: int, rows: dict[str, dict[str, Any]]) -> None:
        """Ticker rows (symbol → the columns written) a committed transaction inserted.

        A series not read yet stays unknown: rows written before this runtime started may
        be newer. A row newer than, or as new as (its id is higher), the known one is the
        series' newest.
        """
        for symbol, row in rows.items():
            key = (session_id, symbol)
            if key in self.market_rows:
                known = self.market_rows[key]
                if known is None or row["timestamp"] >= known["timestamp"]:
                    self.market_rows[key] = market_row(row)

    def note_candles(self, session_id: int, rows: list[dict[str, Any]],
                     series: list[tuple[str, str]]) -> None:
        """Candle rows (``ohlcv`` column → value each) a committed transaction inserted, in
        the order inserted, for the (symbol, timeframe) ``series`` the loop stores.

        The session's kept candles gain them. A session none of whose series had a candle
        stored (the tips before these rows say so: a new day's) begins them with these rows,
        sparing the decide step a read of the hundreds the first fetch stores; call it
        before recording these rows' tips.
        """
        if self.candles is None or self.candles[0] != session_id:
            if not all(self.candle_tips.get((session_id, *key), _UNKNOWN) is None
                       for key in series):
                return
            self.candles = (session_id, SessionCandles())
        self.candles[1].add_stored(rows)

    def watch(self, sessions: sessionmaker) -> None:
        """Re-arm the order flag and forget the plans or session figures read whenever a
        transaction of ``sessions`` that wrote orders, plans or figures commits, whichever
        code wrote them (the decision step, commands, fill sync, the day's roll...).

        Only commits do it: a reader cannot have missed rows a transaction still open was
        writing, because that transaction's commit comes after the read. A session that
        rolled a write back and later commits does it too: one needless read.
        """
        event.listen(sessions, "after_flush", _note_writes)
        event.listen(sessions, "after_commit", self._committed)

    def _committed(self, session: Session) -> None:
        if session.info.pop(_WROTE_ORDERS, False):
            self.orders_may_be_live = True
        if session.info.pop(_WROTE_PLANS, False):
            self.active_plans = None
        if session.info.pop(WROTE_FIGURES, False):
            self.figures = None


def market_row(fields: dict[str, Any]) -> dict[str, Any]:
    """The row as the database returns the columns the decision reads: floats (a REAL
    column stores an int as a float)."""
    return {"timestamp": fields["timestamp"],
            **{name: None if fields.get(name) is None else float(fields[name])
               for name in MARKET_FIGURES}}


_UNKNOWN = object()  # a candle tip not read yet
_WROTE_ORDERS, _WROTE_PLANS = "mirror: wrote orders", "mirror: wrote plans"


def _note_writes(session: Session, _flush: UOWTransaction) -> None:
    for row in (*session.new, *session.dirty):
        if isinstance(row, Order):
            session.info[_WROTE_ORDERS] = True
        elif isinstance(row, TradePlan):
            session.info[_WROTE_PLANS] = True
        elif isinstance(row, TradingSession | SessionStatsCache):
            session.info[WROTE_FIGURES] = True
