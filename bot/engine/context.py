"""Build the ``DecisionContext`` an engine decides on, from the database alone.

The engine must see what the bot knew at ``now`` and nothing later: the queries in
``db.decision_queries`` enforce that, and this module only assembles their answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.orm import Session as DbSession

from bot.config import Settings
from bot.engine.base import DecisionContext, MarketView
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
    newest_markets: dict[tuple[int, str], dict | None] | None = None,
) -> DecisionContext:
    """Everything the engines may know at ``now``; ``now`` must be aware UTC.

    ``traced_cost``: the session's summed trace cost, when the caller keeps it (see
    ``db.decision_queries.session_stats``).
    ``newest_markets``: the caller's record of each series' newest ticker row (see
    ``bot.mirror``), read here the first time a series is missing from it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware UTC")
    # a connection is cheaper per statement than the session (decision_queries)
    reader = db.connection() if isinstance(db, DbSession) else db
    markets: dict[str, MarketView] = {}
    frames = q.candle_frames(reader, session_id, list(settings.symbols), list(settings.timeframes),
                             now, candle_limit)
    for symbol in settings.symbols:
        newest = None
        if newest_markets is not None:
            key = (session_id, symbol)
            if key not in newest_markets:
                newest_markets[key] = q.newest_market(reader, session_id, symbol)
            newest = newest_markets[key]
        markets[symbol] = _market_view(
            symbol, q.latest_market(reader, session_id, symbol, now, newest), frames[symbol])
    return DecisionContext(
        now=now,
        session_id=session_id,
        symbols=list(settings.symbols),
        markets=markets,
        positions=q.positions(reader, session_id),
        open_orders=q.open_orders(reader, session_id),
        open_plans=q.open_plans(reader, session_id),
        recent_trades=q.recent_trades(reader, session_id, now, RECENT_TRADES),
        stats=q.session_stats(reader, session_id, traced_cost),
        equity=equity,
        quote_balance=quote_balance,
    )


def _market_view(
    symbol: str, ticker: dict | None, candles: Mapping[str, pd.DataFrame]
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
    )
