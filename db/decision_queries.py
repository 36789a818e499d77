"""Read queries behind the decision context: what an engine may know at one instant.

Every query that touches time takes ``now`` and never returns a row from after it, and
candles only once they have closed (``timestamp + timeframe <= now``), so a replay cannot
leak the future into a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Integer, Row, bindparam, select
from sqlalchemy.orm import Session as DbSession

from bot.model.candles import CandleColumns, StoredCandles
from bot.model.timeframes import timeframe_delta
from db.models import (
    OHLCV,
    MarketData,
    OpenOrder,
    Position,
    SessionStatsCache,
    Trade,
    TradePlan,
)
from db.models import Session as TradingSession
from db.plans import ACTIVE
from db.sessions import earlier_session_ids, of_run
from db.traces import traced_cost as traced_cost_of

# Statements are built once with bound parameters and select plain table columns: building
# a select(), the ORM's statement compilation and loading ORM objects cost more than running
# the query on SQLite, and the context runs these at every decision. Rows come back as
# dicts keyed by column name (the models name every attribute after its column). Being
# Core statements they do not autoflush: the context is read before the decide step writes.
# They run on a session or, a third cheaper per statement, on a session's connection.
Reader = DbSession | Connection
_SESSION = bindparam("session_id")
_NOW = bindparam("now")


def _columns(model: Any, names: str) -> list[Any]:
    return [model.__table__.c[name] for name in names.split()]


def _table(model: Any) -> Any:
    return model.__table__


_POS, _ORD, _PLAN, _TRADE = (_table(m) for m in (Position, OpenOrder, TradePlan, Trade))
_MARKET, _STATS = (_table(m) for m in (MarketData, SessionStatsCache))
_SESSIONS, _RUN = _table(TradingSession), _table(TradingSession).alias("run")
_POSITIONS = (select(*_columns(Position, "symbol quantity avg_price exchange_timestamp"))
              .where(_POS.c.session_id == _SESSION, _POS.c.quantity != 0)
              .order_by(_POS.c.symbol))
# The columns of an open order the context shows, also read off the mirrored snapshot.
ORDER_FIELDS = ("order_id", "client_order_id", "symbol", "side", "type", "price", "amount",
                "remaining", "status")
_OPEN_ORDERS = (select(*_columns(OpenOrder, " ".join(ORDER_FIELDS)))
                .where(_ORD.c.session_id == _SESSION).order_by(_ORD.c.id))
# The columns of a plan the context shows, also read off the plans step's loaded plans.
PLAN_FIELDS = ("id", "symbol", "side", "entry_price", "stop_price", "target_price", "size",
               "filled_size", "status", "version", "reason", "opened_at")
# Found through the status index (few plans are active), each checked for its run
# (``of_run``), rather than through the session's, which walked every plan of the run.
# The statuses are one bound parameter each: a list makes an expanding IN, which SQLAlchemy
# renders anew at each execution (half the cost of running this query).
_OPEN_PLANS = (select(*_columns(TradePlan, " ".join(PLAN_FIELDS)))
               .where(_PLAN.c.status.in_([bindparam(f"active_{index}", status)
                                          for index, status in enumerate(ACTIVE)]),
                      of_run(_PLAN.c.session_id))
               .order_by(_PLAN.c.id))
# The session's day and the run's day before it: just after midnight the new day has no
# fills yet, and an engine must still see the evening's.
_TODAY_AND_DAY_BEFORE = (select(_RUN.c.id).where(
    _SESSIONS.c.id == _SESSION, _RUN.c.kind == _SESSIONS.c.kind,
    _RUN.c.run_name == _SESSIONS.c.run_name, _RUN.c.date <= _SESSIONS.c.date)
    .order_by(_RUN.c.date.desc()).limit(2))
_NEWEST_TRADES = (select(*_columns(Trade, "timestamp symbol action quantity price fee "
                                          "realized_pnl reason plan_id"))
                  .where(_TRADE.c.session_id.in_(_TODAY_AND_DAY_BEFORE))
                  .order_by(_TRADE.c.timestamp.desc(), _TRADE.c.id.desc())
                  .limit(bindparam("limit", type_=Integer)))
_RECENT_TRADES = _NEWEST_TRADES.where(_TRADE.c.timestamp <= _NOW)
# The session's figures and its stats cache row in one statement (the cache row refers to its
# session, so there is no cache row without a session row).
_FIGURES = (select(*_columns(TradingSession, "net_pnl total_fees total_trades starting_balance "
                                             "total_llm_cost"),
                   _STATS.c.session_id.label("cached"), _STATS.c.total_trades.label("cached_trades"),
                   _STATS.c.total_fees.label("cached_fees"), _STATS.c.gross_pnl,
                   _STATS.c.start_of_day_equity, _STATS.c.wins, _STATS.c.losses,
                   _STATS.c.total_llm_cost.label("cached_llm_cost"))
            .select_from(_SESSIONS.outerjoin(_STATS, _STATS.c.session_id == _SESSIONS.c.id))
            .where(_SESSIONS.c.id == _SESSION))
MARKET_FIGURES = ("price", "bid", "ask", "spread_pct", "ob_imbalance", "volume")
_NEWEST_MARKET = (select(_MARKET.c.timestamp, *_columns(MarketData, " ".join(MARKET_FIGURES)))
                  .where(_MARKET.c.session_id == _SESSION,
                         _MARKET.c.symbol == bindparam("symbol"))
                  .order_by(_MARKET.c.timestamp.desc(), _MARKET.c.id.desc()).limit(1))
_LATEST_MARKET = _NEWEST_MARKET.where(_MARKET.c.timestamp <= _NOW)


def _dicts(db: Reader, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = db.execute(statement, params)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def positions(db: Reader, session_id: int) -> list[dict[str, Any]]:
    return _dicts(db, _POSITIONS, {"session_id": session_id})


def open_orders(db: Reader, session_id: int) -> list[dict[str, Any]]:
    return _dicts(db, _OPEN_ORDERS, {"session_id": session_id})


def open_plans(db: Reader, session_id: int) -> list[dict[str, Any]]:
    """Plans not yet closed (``db.plans.ACTIVE``, every other status), from every day of the
    run: plans outlive the day they opened."""
    return _dicts(db, _OPEN_PLANS, {"session_id": session_id})


def recent_trades(
    db: Reader, session_id: int, now: datetime, limit: int = 20,
    newest: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The newest fills up to ``now``, returned oldest first (the order a prompt reads).

    ``newest``: the newest ``limit`` fills (``newest_trades``), when the caller
    keeps them; they are the answer unless one was booked with a time after ``now``.
    """
    if newest is not None and (not newest or newest[0]["timestamp"] <= now):
        rows = [dict(row) for row in newest]
    else:
        rows = _dicts(db, _RECENT_TRADES, {"session_id": session_id, "now": now,
                                           "limit": limit})
    rows.reverse()
    return rows


def newest_trades(db: Reader, session_id: int, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` fills of the session's day and the run's day before it, whatever
    their time, newest first."""
    return _dicts(db, _NEWEST_TRADES, {"session_id": session_id, "limit": limit})


def session_figures(db: Reader, session_id: int) -> Row | None:
    """The session row's figures and its stats cache row's, as ``session_stats`` reads them
    (None for an unknown session)."""
    return db.execute(_FIGURES, {"session_id": session_id}).first()


def session_stats(db: Reader, session_id: int, traced_cost: float | None = None,
                  figures: Row | None = None) -> dict[str, Any]:
    """Aggregates of the session; LLM cost is the largest of the three places it is kept.

    The cost cap must not be fooled by a stale cache, so the sum of the traces counts too:
    ``traced_cost`` when the caller keeps that sum (the decide step does, see
    ``bot.decision_memory``), else it is summed here. ``figures``: the session's
    ``session_figures``, when the caller keeps them.
    """
    row = figures if figures is not None else session_figures(db, session_id)
    if traced_cost is None:
        traced_cost = traced_cost_of(db, session_id)
    stats: dict[str, Any] = {
        "net_pnl": row.net_pnl if row else 0.0,
        "total_fees": row.total_fees if row else 0.0,
        "total_trades": row.total_trades if row else 0,
        "starting_balance": row.starting_balance if row else 0.0,
    }
    llm_costs = [float(traced_cost or 0.0), row.total_llm_cost if row else 0.0]
    if row is not None and row.cached is not None:
        stats.update(
            total_trades=max(stats["total_trades"], row.cached_trades),
            total_fees=max(stats["total_fees"], row.cached_fees),
            gross_pnl=row.gross_pnl,
            start_of_day_equity=row.start_of_day_equity,
            wins=row.wins,
            losses=row.losses,
        )
        llm_costs.append(row.cached_llm_cost)
    stats["total_llm_cost"] = max(llm_costs)
    return stats


def latest_market(
    db: Reader, session_id: int, symbol: str, now: datetime,
    newest: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The newest ticker snapshot taken at or before ``now``.

    ``newest``: the series' newest row (``newest_market``), when the caller keeps it; it is
    the answer unless it was taken after ``now``.
    """
    if newest is not None and newest["timestamp"] <= now:
        return dict(newest)
    rows = _dicts(db, _LATEST_MARKET, {"session_id": session_id, "symbol": symbol, "now": now})
    return rows[0] if rows else None


def newest_market(db: Reader, session_id: int, symbol: str) -> dict[str, Any] | None:
    """The series' newest ticker snapshot, whatever its time."""
    rows = _dicts(db, _NEWEST_MARKET, {"session_id": session_id, "symbol": symbol})
    return rows[0] if rows else None


def closed_candles(
    db: Reader, session_id: int, symbol: str, timeframe: str, now: datetime, limit: int
) -> pd.DataFrame:
    """The newest ``limit`` candles that had closed by ``now``, oldest first."""
    return candle_frames(db, session_id, [symbol], [timeframe], now, limit)[symbol][timeframe]


def candle_frames(
    db: Reader, session_id: int, symbols: list[str], timeframes: list[str], now: datetime,
    limit: int, store: SessionCandles | None = None,
) -> dict[str, StoredCandles]:
    """``closed_candles`` for every symbol and timeframe, topped up with one query a series.

    Stored candles never change (the loop only inserts newer ones), so each session's
    candles (with the run's history before them, ``SessionCandles.read``) are kept in
    memory per database engine and only each series' newer rows are
    read at each decision. Reading the whole window into a new DataFrame at every step was the
    largest cost of a replay after the indicators; the window is now handed out as column
    arrays, and a frame is built only for a reader that asks for one. The cut at ``now`` is
    the same as the SQL one: a candle is returned only once ``timestamp + timeframe <= now``.

    ``store``: the session's candles as the caller keeps them (``bot.store``), when it
    adds every candle it stores to them: no top-up then.
    """
    if store is None:
        store = _session_candles(db, session_id, [(s, tf) for s in symbols for tf in timeframes],
                                 limit)
    return {symbol: StoredCandles({tf: store.columns(symbol, tf, now - timeframe_delta(tf),
                                                     limit) for tf in timeframes})
            for symbol in symbols}


class _Series:
    """One symbol and timeframe: timestamps (µs) and OHLCV columns in growing arrays."""

    def __init__(self) -> None:
        self.size = 0
        self.stamps = np.empty(64, dtype="int64")
        self.values = np.empty((5, 64))

    def append(self, rows: list[tuple[int, float, float, float, float, float]]) -> None:
        end = self.size + len(rows)
        if end > len(self.stamps):
            capacity = max(end, 2 * len(self.stamps))
            stamps, values = np.empty(capacity, dtype="int64"), np.empty((5, capacity))
            stamps[: self.size] = self.stamps[: self.size]
            values[:, : self.size] = self.values[:, : self.size]
            self.stamps, self.values = stamps, values
        block = np.array(rows, dtype=float).reshape(-1, 6)
        self.stamps[self.size:end] = [row[0] for row in rows]
        self.values[:, self.size:end] = block[:, 1:].T
        if self.size and rows[0][0] <= self.stamps[self.size - 1]:
            # An older candle stored after newer ones (a backfill): keep time order.
            order = np.argsort(self.stamps[:end], kind="stable")
            self.stamps[:end] = self.stamps[:end][order]
            self.values[:, :end] = self.values[:, :end][:, order]
        self.size = end

    def keep_newest(self, keep: int) -> None:
        start = max(0, self.size - keep)
        if start:
            self.stamps[: self.size - start] = self.stamps[start: self.size].copy()
            self.values[:, : self.size - start] = self.values[:, start: self.size].copy()
            self.size -= start

    def columns(self, cutoff_us: int, limit: int) -> CandleColumns:
        """Copies, not views: a backfill reorders the arrays in place."""
        stop = int(np.searchsorted(self.stamps[: self.size], cutoff_us, side="right"))
        start = max(0, stop - limit)
        values = self.values[:, start:stop].copy()
        return CandleColumns(self.stamps[start:stop].astype("datetime64[us]"), *values)


_EMPTY = _Series()
_OHLCV = _table(OHLCV)
_CANDLE_ROWS = select(*_columns(OHLCV, "symbol timeframe timestamp open high low close volume"))
_SESSION_CANDLES = _CANDLE_ROWS.where(_OHLCV.c.session_id == _SESSION)
# The newest ``keep`` of one series before a time, over several sessions (a run's earlier).
_SERIES_BEFORE = (_CANDLE_ROWS.where(
    _OHLCV.c.session_id.in_(bindparam("session_ids", expanding=True)),
    _OHLCV.c.symbol == bindparam("symbol"), _OHLCV.c.timeframe == bindparam("timeframe"),
    _OHLCV.c.timestamp < bindparam("before"))
    .order_by(_OHLCV.c.timestamp.desc()).limit(bindparam("keep")))
_NEVER = datetime(9999, 1, 1, tzinfo=UTC)
# A top-up reads one series' rows newer than the newest it holds: a range of the table's key.
_NEWER_CANDLES = _CANDLE_ROWS.where(
    _OHLCV.c.session_id == _SESSION, _OHLCV.c.symbol == bindparam("symbol"),
    _OHLCV.c.timeframe == bindparam("timeframe"), _OHLCV.c.timestamp > bindparam("after"))


class SessionCandles:
    """One session's stored candles, per symbol and timeframe, in time order."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], _Series] = {}

    @classmethod
    def read(cls, db: Reader, session_id: int, keep: int,
             series: Iterable[tuple[str, str]] | None = None) -> SessionCandles:
        """The candles the session relies on: its own and, before its first, the newest
        ``keep`` of each series (``series``, else those it stored) its run's earlier sessions
        stored, as the session would hold had its first fetch stored ``keep`` of them again.

        A session stores only the candles newer than the run's (``bot.steps``'s market
        data), so that history is in the sessions before it, newest first, read a session
        at a time. A series that closes less often than a session (2d, 1w) has sessions
        that stored none of it: from the first such one, its history is read by series,
        over all the earlier sessions at once.
        """
        own = _grouped(db.execute(_SESSION_CANDLES, {"session_id": session_id}))
        wanted = set(own if series is None else series)
        earlier: dict[tuple[str, str], list[tuple]] = {}
        earlier_ids = earlier_session_ids(db, session_id) if wanted else []
        sparse: set[tuple[str, str]] = set()
        for earlier_id in earlier_ids:
            stored = _grouped(db.execute(_SESSION_CANDLES, {"session_id": earlier_id}))
            for key in list(wanted):
                rows = [row for row in stored.get(key, ())
                        if not own.get(key) or row[0] < own[key][0][0]]
                if not rows:
                    wanted.discard(key)
                    sparse.add(key)
                    continue
                earlier.setdefault(key, []).extend(rows)
                if len(earlier[key]) >= keep:
                    wanted.discard(key)
            if not wanted:
                break
        for symbol, timeframe in sparse:
            held = [row[0] for row in (*earlier.get((symbol, timeframe), ()),
                                       *own.get((symbol, timeframe), ()))]
            before = _EPOCH + timedelta(microseconds=int(min(held))) if held else _NEVER
            found = _grouped(db.execute(_SERIES_BEFORE, {
                "session_ids": earlier_ids, "symbol": symbol, "timeframe": timeframe,
                "before": before, "keep": keep}))
            earlier.setdefault((symbol, timeframe), []).extend(
                found.get((symbol, timeframe), ()))
        store = cls()
        for key in {*own, *earlier}:
            # once each: in a database older than this, every day stored its warm-up again
            history = sorted({row[0]: row for row in earlier.get(key, ())}.values())
            history = history[-keep:] if keep else []
            store.series.setdefault(key, _Series()).append([*history, *own.get(key, ())])
        return store

    def top_up(self, db: Reader, session_id: int, series: Iterable[tuple[str, str]]) -> None:
        """Add each (symbol, timeframe) series' rows newer than the newest held, all of it
        the first time. Nothing older arrives after a read: the loop only stores candles
        newer than a series' newest (``db.market.new_candles``)."""
        for symbol, timeframe in series:
            held = self.series.get((symbol, timeframe))
            after = _EPOCH if held is None or not held.size else \
                _EPOCH + timedelta(microseconds=int(held.stamps[held.size - 1]))
            self._add(db.execute(_NEWER_CANDLES, {"session_id": session_id, "symbol": symbol,
                                                  "timeframe": timeframe, "after": after}))

    def add_stored(self, rows: list[dict[str, Any]]) -> None:
        """Add candles just stored (``ohlcv`` column → value each), in the order stored."""
        self._add((row["symbol"], row["timeframe"], row["timestamp"], row["open"], row["high"],
                   row["low"], row["close"], row["volume"]) for row in rows)

    def _add(self, rows: Iterable[Sequence[Any]]) -> None:
        """(symbol, timeframe, timestamp, open, high, low, close, volume) rows."""
        for key, batch in _grouped(rows).items():
            self.series.setdefault(key, _Series()).append(batch)

    def rows(self) -> dict[tuple[str, str], list[tuple]]:
        """Every series' candles as (timestamp, open, high, low, close, volume), oldest
        first."""
        return {key: [(_EPOCH + timedelta(microseconds=int(stamp)), *map(float, values))
                      for stamp, values in zip(series.stamps[: series.size],
                                               series.values[:, : series.size].T, strict=True)]
                for key, series in self.series.items()}

    def trim(self, keep: int) -> None:
        """Forget all but each series' newest ``keep`` candles."""
        for series in self.series.values():
            series.keep_newest(keep)

    def columns(self, symbol: str, timeframe: str, cutoff: datetime,
                limit: int) -> CandleColumns:
        series = self.series.get((symbol, timeframe), _EMPTY)
        return series.columns(_micros(cutoff), limit)


def _grouped(rows: Iterable[Sequence[Any]]
             ) -> dict[tuple[str, str], list[tuple[int, float, float, float, float, float]]]:
    """(symbol, timeframe, timestamp, o, h, l, c, v) rows by series, as (µs, o, h, l, c, v)
    in time order."""
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(
            (_micros(row[2]), row[3], row[4], row[5], row[6], row[7]))
    for batch in grouped.values():
        batch.sort(key=lambda r: r[0])
    return grouped


_CACHES: WeakKeyDictionary[Engine, dict[int, SessionCandles]] = WeakKeyDictionary()


def _session_candles(db: Reader, session_id: int, series: list[tuple[str, str]],
                     keep: int) -> SessionCandles:
    """The engine's cache for one session (``SessionCandles.read``), topped up to the
    newest stored candle.

    Keyed on the engine object so two databases (tests, a console opening a replay file)
    never share candles. There is one writer, and candles are never deleted.
    """
    bind = db.get_bind() if isinstance(db, DbSession) else db
    engine = bind if isinstance(bind, Engine) else bind.engine
    sessions = _CACHES.setdefault(engine, {})
    store = sessions.get(session_id)
    if store is None:
        store = sessions[session_id] = SessionCandles.read(db, session_id, keep, series)
    store.top_up(db, session_id, series)
    return store


def _micros(when: datetime) -> int:
    """Microseconds since the epoch, exact (no float), for aware or naive-UTC values."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
