"""Build the ``DecisionContext`` an engine decides on, from the database alone (or the
copies of its rows the runtime's store keeps, ``bot.store``).

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
from sqlalchemy import Connection
from sqlalchemy.orm import Session as DbSession

from bot.config import Settings
from bot.model.decision import DecisionContext, MarketView
from bot.store import Store
from db import decision_queries as q

CONTEXT_CANDLES = 150  # enough for every indicator's warm-up; the prompt shows fewer
RECENT_TRADES = 5  # the prompt shows these; the session totals sum up the rest


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
    store: Store | None = None,
    books: Mapping[str, Mapping[str, Any]] | None = None,
) -> DecisionContext:
    """Everything the engines may know at ``now``; ``now`` must be aware UTC.

    ``traced_cost``: the session's summed trace cost, when the caller keeps it (see
    ``db.decision_queries.session_stats``).
    ``store``: the store of the runtime whose session ``session_id`` is (``bot.store``):
    what it keeps is not read again, and what is read here is kept in it.
    A hold step while flat then reads nothing at all.
    ``books``: each symbol's order book of this iteration (the market-data step's quotes).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware UTC")
    # a connection is cheaper per statement than the session (decision_queries)
    reader = db.connection() if isinstance(db, DbSession) else db
    markets: dict[str, MarketView] = {}
    series = [(symbol, tf) for symbol in settings.symbols for tf in settings.timeframes]
    frames = q.candle_frames(
        reader, session_id, list(settings.symbols), list(settings.timeframes), now, candle_limit,
        None if store is None else store.session_candles(reader, session_id, series, candle_limit))
    for symbol in settings.symbols:
        newest = None if store is None else store.newest_market(reader, session_id, symbol)
        markets[symbol] = _market_view(
            symbol, q.latest_market(reader, session_id, symbol, now, newest), frames[symbol],
            (books or {}).get(symbol, {}))
    stats = q.session_stats(reader, session_id, traced_cost,
                            None if store is None else store.session_figures(reader, session_id))
    return DecisionContext(
        now=now,
        session_id=session_id,
        symbols=list(settings.symbols),
        markets=markets,
        positions=_positions(reader, session_id, store),
        open_orders=_open_orders(reader, session_id, store),
        open_plans=_open_plans(reader, session_id, store),
        recent_trades=_recent_trades(reader, session_id, now, stats["total_trades"], store),
        stats=stats,
        equity=equity,
        quote_balance=quote_balance,
    )


def _positions(reader: Connection, session_id: int,
               store: Store | None) -> list[dict[str, Any]]:
    """The kept snapshot when it is the session's, as the table returns it: by symbol,
    each row with the clock it was last written as of (``Store.positions_at``)."""
    kept = store.positions if store is not None else None
    if kept is None or kept[0] != session_id:
        return q.positions(reader, session_id)
    assert store is not None
    return [{"symbol": symbol, "quantity": float(quantity), "avg_price": float(avg_price),
             "exchange_timestamp": store.positions_at}
            for symbol, quantity, avg_price in sorted(kept[1])]


def _open_orders(reader: Connection, session_id: int,
                 store: Store | None) -> list[dict[str, Any]]:
    """The kept snapshot when it is the session's, as the table returns it (REAL
    columns come back as floats), in the order it was written (the ids' order)."""
    snapshot = store.open_orders if store is not None else None
    if snapshot is None or snapshot[0] != session_id:
        return q.open_orders(reader, session_id)
    return [{name: float(row[name]) if name in _FLOAT_FIELDS and row[name] is not None
             else row[name] for name in q.ORDER_FIELDS} for row in snapshot[1]]


_FLOAT_FIELDS = frozenset({"price", "amount", "remaining"})


def _open_plans(reader: Connection, session_id: int,
                store: Store | None) -> list[dict[str, Any]]:
    """The run's active plans the plans step loaded, while none was written since."""
    plans = store.active_plans if store is not None else None
    if plans is None:
        return q.open_plans(reader, session_id)
    return [{name: getattr(plan, name) for name in q.PLAN_FIELDS} for plan in plans]


def _recent_trades(reader: Connection, session_id: int, now: datetime, count: int,
                   store: Store | None) -> list[dict[str, Any]]:
    """``count``: the session's trades as its figures count them (``Store.newest_trades``)."""
    newest = None if store is None else store.newest_trades(reader, session_id, count,
                                                             RECENT_TRADES)
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
