"""The runtime's store: every copy of its own rows and every counter over them, kept true
by the store's own writes, so no step reads, keeps or forgets a copy itself.

The loop read back, at every iteration, rows only it writes (the newest stored candle, the
booked fill ids of the sync window) and rewrote snapshots that had not changed; that was
most of the statements of the steps around the decision. Each copy starts empty, so the
first use after a start reads or writes the database as before, and a written value is
recorded only after the transaction that wrote it committed: a SIGKILL or a failed commit
can leave a copy missing, never wrong. What a committed transaction of the runtime's
sessions wrote (orders, plans, the session's figures, commands) re-arms or forgets the
copies it touches, whichever code wrote it; a rolled-back session forgets the plans it
loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, event
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from bot.decision_memory import DecisionMemory
from db.commands import has_pending
from db.decision_queries import MARKET_FIGURES, SessionCandles, newest_market, newest_trades, session_figures
from db.engine import bound_engine
from db.market import newest_candle, newest_candle_of
from db.models import Command, Order, SessionStatsCache, TradePlan
from db.models import Session as TradingSession
from db.orders import any_live_order, live_orders, order_count
from db.plans import active_plans
from db.sessions import earlier_session_ids, run_session_ids
from db.stats import WROTE_FIGURES, apply_llm_cost
from db.trades import booked_trade_ids

# (trading session id, symbol, timeframe): the run's newest stored candle as the session
# knows it (its own newest, else the previous session's) as
# (timestamp, open, high, low, close, volume), or None when none is stored
CandleKey = tuple[int, str, str]
CandleTip = tuple[datetime, Any, Any, Any, Any, Any] | None
# (trading session id, rows) of a snapshot table as last committed
Snapshot = tuple[int, list[Any]]
# A poll for commands that found none is repeated after this much real time at the
# earliest, unless this runtime's sessions queued one since
QUIET_POLL_SECONDS = 0.15


@dataclass(eq=False)
class Store:
    sessions: sessionmaker
    kind: str = "live"
    run_name: str = "live"
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
    # wrote orders commits
    orders_may_be_live: bool = True
    # the run's active plans as last read (detached, loaded), until a transaction that
    # wrote plans commits or the session that read them rolls back (None: read them again)
    active_plans: list[TradePlan] | None = None
    # (trading session id, symbol): the series' newest market_data row, by (timestamp, id),
    # as ``db.decision_queries.newest_market`` returns it (None: there is none); an absent
    # key is unknown. Read once by the decide step, then kept by ``market_written``.
    market_rows: dict[tuple[int, str], dict[str, Any] | None] = field(default_factory=dict)
    # (trading session id, its trade count, its newest fills as
    # ``db.decision_queries.newest_trades`` returns them) as last read; they stand while the
    # session's figures count as many trades (a fill is counted in the transaction that
    # books it, ``db.trades.record_trade``)
    trades_read: tuple[int, int, list[dict[str, Any]]] | None = None
    # (trading session id, its figures as ``db.decision_queries.session_figures`` returns
    # them) as last read, until a transaction that changed them commits
    figures: tuple[int, Row] | None = None
    # (trading session id, the candles of the series the loop stores that its decisions
    # rely on: ``SessionCandles.read``'s), read the first time, then kept by
    # ``market_written``, the market-data step being their only writer; a new day's
    # session carries them over, trimmed to what its decisions read
    candles: tuple[int, SessionCandles] | None = None
    # every session of the run, as last read (sessions are only opened by the day roll)
    run_sessions: list[int] = field(default_factory=list)
    # (trading session id, the run's sessions before it, newest first) as last read
    earlier: tuple[int, list[int]] | None = None
    # orders of the journal before this runtime's (read once), and those its sessions
    # committed since: the client order id counter (``bot.execution``)
    orders_before: int | None = None
    orders_journaled: int = 0
    # commands its sessions committed, and when a poll last found none pending (monotonic
    # seconds) with that count then: ``may_have_commands`` throttles on it
    commands_queued: int = 0
    commands_none_at: tuple[float, int] | None = None
    # this run's traces as the decide step knows them (``bot.decision_memory``)
    traces: DecisionMemory = field(default_factory=DecisionMemory)
    # plan id -> (stop, amount) of its stop resting on the venue, as last placed or found
    # (STOPLOSS_ON_EXCHANGE, ``bot.resting_stop``); missing means "look in the journal"
    resting_stops: dict[int, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        event.listen(self.sessions, "after_flush", _note_writes)
        event.listen(self.sessions, "after_commit", self._committed)
        event.listen(self.sessions, "after_rollback", self._rolled_back)

    # --- runs and sessions ---------------------------------------------------------------

    def session_ids(self, db: Session | Connection, current: int) -> list[int]:
        """Every session of this run; re-read only when ``current`` is not among them.

        Several steps ask at every iteration: the query was a measurable share of a replay.
        """
        if current not in self.run_sessions:
            self.run_sessions = run_session_ids(db, self.kind, self.run_name)
        return list(self.run_sessions)

    # --- market data ---------------------------------------------------------------------

    def candle_tip(self, conn: Connection, key: CandleKey) -> CandleTip:
        """The run's newest stored candle of the series: the session's own newest, else
        (a new day's session) its earlier sessions', where the run's candles go on: the
        previous session's as this runtime knew it, or read from all of them (a series
        that closes less often than a day has sessions that stored none of it); read once
        per session and series, then kept.

        Only the market-data step writes candles, and it hands them to ``market_written``.
        """
        if key not in self.candle_tips:
            session_id, symbol, timeframe = key
            tip = newest_candle(conn, *key)
            if tip is None:
                earlier = self._earlier_sessions(conn, session_id)
                tip = self.candle_tips.get((earlier[0], symbol, timeframe)) if earlier else None
                if tip is None:
                    tip = newest_candle_of(conn, earlier, symbol, timeframe)
            self.candle_tips[key] = tip
        return self.candle_tips[key]

    def _earlier_sessions(self, conn: Connection, session_id: int) -> list[int]:
        """The run's sessions before ``session_id``, newest first (kept for the session)."""
        if self.earlier is None or self.earlier[0] != session_id:
            self.earlier = (session_id, earlier_session_ids(conn, session_id))
        return self.earlier[1]

    def market_written(self, session_id: int, candles: list[dict[str, Any]],
                       tips: dict[CandleKey, CandleTip],
                       tickers: dict[str, dict[str, Any]]) -> None:
        """What a committed transaction of the market-data step inserted: candle rows
        (``ohlcv`` column → value each, in the order inserted), the series' new tips, and
        ticker rows (symbol → the columns written)."""
        self._note_candles(candles)
        self.candle_tips.update(tips)
        self._note_market(session_id, tickers)

    def _note_market(self, session_id: int, rows: dict[str, dict[str, Any]]) -> None:
        """A series not read yet stays unknown: rows written before this runtime started may
        be newer. A row newer than, or as new as (its id is higher), the known one is the
        series' newest."""
        for symbol, row in rows.items():
            key = (session_id, symbol)
            if key in self.market_rows:
                known = self.market_rows[key]
                if known is None or row["timestamp"] >= known["timestamp"]:
                    self.market_rows[key] = market_row(row)

    def _note_candles(self, rows: list[dict[str, Any]]) -> None:
        """The kept candles gain ``rows``, whichever session of the run stored them; none
        kept yet: the decide step reads them, these rows with them."""
        if self.candles is not None:
            self.candles[1].add_stored(rows)

    # --- what the decision reads ---------------------------------------------------------

    def newest_market(self, reader: Connection, session_id: int,
                      symbol: str) -> dict[str, Any] | None:
        """The series' newest market_data row, read once, then kept by ``market_written``."""
        key = (session_id, symbol)
        if key not in self.market_rows:
            self.market_rows[key] = newest_market(reader, session_id, symbol)
        return self.market_rows[key]

    def session_candles(self, reader: Connection, session_id: int,
                        series: list[tuple[str, str]], keep: int) -> SessionCandles:
        """The candles the session's decisions read (``SessionCandles.read``: its own and
        the newest ``keep`` before them of each of ``series``), read the first time; a new
        session of the run takes over the kept ones, trimmed to the newest ``keep``."""
        if self.candles is None:
            self.candles = (session_id, SessionCandles.read(reader, session_id, keep, series))
        elif self.candles[0] != session_id:
            self.candles[1].trim(keep)
            self.candles = (session_id, self.candles[1])
        return self.candles[1]

    def session_figures(self, reader: Connection, session_id: int) -> Row | None:
        """The session's figures, read when none are kept."""
        if self.figures is None or self.figures[0] != session_id:
            figures = session_figures(reader, session_id)
            self.figures = None if figures is None else (session_id, figures)
            return figures
        return self.figures[1]

    def newest_trades(self, reader: Connection, session_id: int, count: int,
                      limit: int) -> list[dict[str, Any]]:
        """The newest fills of the session's day and the run's day before it; ``count``: the
        session's trades as its figures count them, the fills kept are read again once it is
        not the count they were read at (the day before's fills no longer change)."""
        if self.trades_read is None or self.trades_read[:2] != (session_id, count):
            self.trades_read = (session_id, count, newest_trades(reader, session_id, limit))
        return self.trades_read[2]

    def apply_llm_cost(self, conn: Connection, session_id: int, cost: float,
                       now: datetime) -> None:
        """Add an LLM call's cost to the session's figures in ``conn``'s transaction; the
        kept figures are forgotten when ``conn`` next commits (after a rollback too: one
        needless read). The listener is on this connection alone: one on the engine would
        cost every statement of every connection a dispatch."""
        with Session(bind=conn) as session:  # joins the connection's transaction
            apply_llm_cost(session, session_id, cost, now)
            session.flush()
        event.listen(conn, "commit", self._figures_committed, once=True)

    # --- snapshots -----------------------------------------------------------------------

    def positions_written(self, snapshot: tuple[int, list[tuple[str, float, float]]],
                          now: datetime) -> None:
        """A position snapshot committed as of ``now`` (``bot.position_snapshot``)."""
        self.positions, self.positions_at = snapshot, now

    def open_orders_written(self, snapshot: tuple[int, list[dict[str, Any]]]) -> None:
        """An open-order snapshot committed (``bot.reconcile``)."""
        self.open_orders = snapshot

    # --- orders and plans ----------------------------------------------------------------

    def may_have_live_orders(self, current: int) -> bool:
        """Whether an order of the run may be live in the journal: the flag a commit that
        wrote orders raises, then checked with one light read, since the usual order (a
        market order) was done before that commit."""
        if self.orders_may_be_live:
            with bound_engine(self.sessions).connect() as conn:
                self.orders_may_be_live = any_live_order(conn, current)
        return self.orders_may_be_live

    def live_orders(self, db: Session, current: int) -> list[Order]:
        """The run's live journal orders; none read while none may be live."""
        if not self.orders_may_be_live:
            return []
        live = live_orders(db, current)
        self.orders_may_be_live = bool(live)
        return live

    def read_active_plans(self, db: Session, current: int) -> list[TradePlan]:
        """The run's active plans, read in ``db`` and kept until a commit writes plans or
        ``db`` rolls back."""
        db.info[_READ_PLANS] = True
        self.active_plans = active_plans(db, current)
        return self.active_plans

    def next_order_number(self, db: Session) -> int:
        """The client order id counter's next number: the journal's row count plus one, the
        count read once and then advanced by the orders this store's sessions commit."""
        if self.orders_before is None:
            self.orders_before = order_count(db) - self.orders_journaled
        return self.orders_before + self.orders_journaled + 1

    def stop_rests(self, plan_id: int, stop: float, amount: float) -> None:
        """The plan's stop rests on the venue at ``stop`` for ``amount``, as placed or found
        in the journal (``bot.resting_stop``)."""
        self.resting_stops[plan_id] = (stop, amount)

    def stop_lifted(self, plan_id: int) -> None:
        """The plan's resting stop was canceled: look in the journal next time."""
        self.resting_stops.pop(plan_id, None)

    # --- fills ---------------------------------------------------------------------------

    def booked_in(self, window: set[str]) -> set[str]:
        """Of ``window``'s venue trade ids, those known booked; the rest are forgotten."""
        self.booked_fills &= window
        return self.booked_fills

    def unbooked_in(self, db: Session, venue: str, window: set[str]) -> set[str]:
        """``window``'s ids booked in ``trades``, asked in one query for those not known."""
        self.booked_fills |= booked_trade_ids(db, venue, window - self.booked_fills)
        return self.booked_fills

    def booked(self, trade_id: str) -> None:
        """A fill whose trade row committed (or was found committed)."""
        self.booked_fills.add(trade_id)

    # --- commands ------------------------------------------------------------------------

    def may_have_commands(self, bot: str) -> bool:
        """Whether a command may wait for ``bot``: asked at most every QUIET_POLL_SECONDS of
        real time while the answer is "none", and at once after a command this store's
        sessions queued."""
        asked = (time.monotonic(), self.commands_queued)
        if (self.commands_none_at is not None and asked[1] == self.commands_none_at[1]
                and asked[0] - self.commands_none_at[0] < QUIET_POLL_SECONDS):
            return False
        with bound_engine(self.sessions).connect() as conn:  # the usual "none": one light query
            pending = has_pending(conn, bot=bot)
        self.commands_none_at = None if pending else asked
        return pending

    # --- what commits and rollbacks change -----------------------------------------------

    def _committed(self, session: Session) -> None:
        if session.info.pop(_WROTE_ORDERS, 0):
            self.orders_may_be_live = True
        self.orders_journaled += session.info.pop(_NEW_ORDERS, 0)
        self.commands_queued += session.info.pop(_NEW_COMMANDS, 0)
        if session.info.pop(_WROTE_PLANS, False):
            self.active_plans = None
        if session.info.pop(WROTE_FIGURES, False):
            self.figures = None

    def _rolled_back(self, session: Session) -> None:
        for key in (_WROTE_ORDERS, _NEW_ORDERS, _NEW_COMMANDS, _WROTE_PLANS, WROTE_FIGURES):
            session.info.pop(key, None)
        if session.info.pop(_READ_PLANS, False):
            self.active_plans = None  # the rollback expired them

    def _figures_committed(self, _conn: Connection) -> None:
        self.figures = None


def market_row(fields: dict[str, Any]) -> dict[str, Any]:
    """The row as the database returns the columns the decision reads: floats (a REAL
    column stores an int as a float)."""
    return {"timestamp": fields["timestamp"],
            **{name: None if fields.get(name) is None else float(fields[name])
               for name in MARKET_FIGURES}}


_WROTE_ORDERS, _WROTE_PLANS = "store: wrote orders", "store: wrote plans"
_NEW_ORDERS, _NEW_COMMANDS = "store: new orders", "store: new commands"
_READ_PLANS = "store: read the active plans"


def _note_writes(session: Session, _flush: UOWTransaction) -> None:
    for row in session.new:
        if isinstance(row, Order):
            session.info[_NEW_ORDERS] = session.info.get(_NEW_ORDERS, 0) + 1
        elif isinstance(row, Command):
            session.info[_NEW_COMMANDS] = session.info.get(_NEW_COMMANDS, 0) + 1
    for row in (*session.new, *session.dirty):
        if isinstance(row, Order):
            session.info[_WROTE_ORDERS] = True
        elif isinstance(row, TradePlan):
            session.info[_WROTE_PLANS] = True
        elif isinstance(row, TradingSession | SessionStatsCache):
            session.info[WROTE_FIGURES] = True
