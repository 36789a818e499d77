"""Build the ``DecisionContext`` an engine decides on, from the database alone (or the
copies of its rows the runtime keeps, ``bot.mirror``).

The engine must see what the bot knew at ``now`` and nothing later: the queries in
``db.decision_queries`` enforce that, and this module assembles their answers. The decide
step builds the context here, beside the store, and hands the engine a ready value: the
engines import no storage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session as DbSession

from bot.config import Settings
from bot.mirror import StoreMirror
from bot.model.decision import DecisionContext, MarketView
from db import decision_queries as q

CONTEXT_CANDLES = 150  # enough for every indicator's warm-up; the prompt shows fewer
RECENT_TRADES = 20


def build_context(
    db: DbSession | Connection,
    settings: Settings,
    session_id: int,
    now: datetime,
    equity: float,
    quote_balance: float,
    *,
    candle_limit: int = CONTEXT_CANDLES,
    traced_cost: float | None = None,
    mirror: StoreMirror | None = None,
    books: Mapping[str, Mapping[str, Any]] | None = None,
) -> DecisionContext:
    """Everything the engines may know at ``now``; ``now`` must be aware UTC.

    ``traced_cost``: the session's summed trace cost, when the caller keeps it (see
    ``db.decision_queries.session_stats``).
    ``mirror``: the copies of its rows kept by the runtime whose session ``session_id`` is
    (``bot.mirror``): what it holds is not read again, and what is read here is kept in it.
    A hold step while flat then reads nothing at all.
    ``books``: each symbol's order book of this iteration (the market-data step's quotes).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware UTC")
    # a connection is cheaper per statement than the session (decision_queries)
    reader = db.connection() if isinstance(db, DbSession) else db
    markets: dict[str, MarketView] = {}
    frames = q.candle_frames(reader, session_id, list(settings.symbols), list(settings.timeframes),
                             now, candle_limit, _candles(reader, session_id, mirror))
    for symbol in settings.symbols:
        newest = None
        if mirror is not None:
            key = (session_id, symbol)
            if key not in mirror.market_rows:
                mirror.market_rows[key] = q.newest_market(reader, session_id, symbol)
            newest = mirror.market_rows[key]
        markets[symbol] = _market_view(
            symbol, q.latest_market(reader, session_id, symbol, now, newest), frames[symbol],
            (books or {}).get(symbol, {}))
    stats = q.session_stats(reader, session_id, traced_cost, _figures(reader, session_id, mirror))
    return DecisionContext(
        now=now,
        session_id=session_id,
        symbols=list(settings.symbols),
        markets=markets,
        positions=_positions(reader, session_id, mirror),
        open_orders=_open_orders(reader, session_id, mirror),
        open_plans=_open_plans(reader, session_id, mirror),
        recent_trades=_recent_trades(reader, session_id, now, stats["total_trades"], mirror),
        stats=stats,
        equity=equity,
        quote_balance=quote_balance,
    )


def _candles(reader: Connection, session_id: int,
             mirror: StoreMirror | None) -> q.SessionCandles | None:
    """The session's candles the mirror keeps, read whole the first time."""
    if mirror is None:
        return None
    if mirror.candles is None or mirror.candles[0] != session_id:
        mirror.candles = (session_id, q.SessionCandles.read(reader, session_id))
    return mirror.candles[1]


def _figures(reader: Connection, session_id: int, mirror: StoreMirror | None) -> Row | None:
    """The session's figures the mirror keeps, read when it keeps none."""
    if mirror is None:
        return None
    if mirror.figures is None or mirror.figures[0] != session_id:
        figures = q.session_figures(reader, session_id)
        mirror.figures = None if figures is None else (session_id, figures)
        return figures
    return mirror.figures[1]


def _positions(reader: Connection, session_id: int,
               mirror: StoreMirror | None) -> list[dict[str, Any]]:
    """No positions while the mirrored snapshot holds none: held rows carry the time of their
    last write, which the mirror does not keep, so those are read."""
    if mirror is not None and mirror.positions == (session_id, []):
        return []
    return q.positions(reader, session_id)


def _open_orders(reader: Connection, session_id: int,
                 mirror: StoreMirror | None) -> list[dict[str, Any]]:
    """The mirrored snapshot when it is the session's, as the table returns it (REAL
    columns come back as floats), in the order it was written (the ids' order)."""
    snapshot = mirror.open_orders if mirror is not None else None
    if snapshot is None or snapshot[0] != session_id:
        return q.open_orders(reader, session_id)
    return [{name: float(row[name]) if name in _FLOAT_FIELDS and row[name] is not None
             else row[name] for name in q.ORDER_FIELDS} for row in snapshot[1]]


_FLOAT_FIELDS = frozenset({"price", "amount", "remaining"})


def _open_plans(reader: Connection, session_id: int,
                mirror: StoreMirror | None) -> list[dict[str, Any]]:
    """The run's active plans the plans step loaded, while none was written since."""
    plans = mirror.active_plans if mirror is not None else None
    if plans is None:
        return q.open_plans(reader, session_id)
    return [{name: getattr(plan, name) for name in q.PLAN_FIELDS} for plan in plans]


def _recent_trades(reader: Connection, session_id: int, now: datetime, count: int,
                   mirror: StoreMirror | None) -> list[dict[str, Any]]:
    """``count``: the session's trades as its figures count them; the fills kept are read
    again once it is not the count they were read at."""
    newest = None
    if mirror is not None:
        if mirror.newest_trades is None or mirror.newest_trades[:2] != (session_id, count):
            mirror.newest_trades = (session_id, count,
                                    q.newest_trades(reader, session_id, RECENT_TRADES))
        newest = mirror.newest_trades[2]
    return q.recent_trades(reader, session_id, now, RECENT_TRADES, newest)


def _market_view(
    symbol: str, ticker: dict | None, candles: Mapping[str, pd.DataFrame],
    book: Mapping[str, Any],
) -> MarketView:
    """Without a ticker the last close stands in for the price (NaN when there is none).

    NaN rather than 0 so that validation refuses to size an order on a missing price.
    """
    last = ticker["price"] if ticker else math.nan
    if not ticker:
        closes = [
            (df["timestamp"].iloc[-1] + q.timeframe_delta(tf), float(df["close"].iloc[-1]))
            for tf, df in candles.items() if not df.empty
        ]
        last = max(closes)[1] if closes else math.nan
    return MarketView(
        symbol=symbol,
        last=float(last),
        bid=ticker.get("bid") if ticker else None,
        ask=ticker.get("ask") if ticker else None,
        spread_pct=ticker.get("spread_pct") if ticker else None,
        ob_imbalance=ticker.get("ob_imbalance") if ticker else None,
        candles=candles,
        book=book,
    )
