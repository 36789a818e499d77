"""The decision context: everything an engine may know at one instant, as plain values.

The loop builds it from the store (``bot.decision_context``) and hands it to the engine,
which reads it and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from bot.model.candles import CandleColumns, StoredCandles


@dataclass
class MarketView:
    """What the engine may know about one symbol at decision time."""

    symbol: str
    last: float
    bid: float | None
    ask: float | None
    spread_pct: float | None
    ob_imbalance: float | None
    candles: Mapping[str, pd.DataFrame]  # timeframe -> closed candles, oldest first
    # columns: timestamp (aware UTC), open, high, low, close, volume
    # The order book an entry would walk (ccxt's bids/asks), so that an engine prices its
    # round trip as the risk layer does (``bot.model.round_trip.round_trip_cost_pct``).
    book: Mapping[str, Any] = field(default_factory=dict)


def candle_columns(view: MarketView, timeframe: str) -> CandleColumns | None:
    """The view's candles for ``timeframe`` as columns, read from the frame if it has one."""
    if isinstance(view.candles, StoredCandles):
        return view.candles.columns(timeframe)
    frame = view.candles.get(timeframe)
    return None if frame is None or frame.empty else CandleColumns.of(frame)


@dataclass
class DecisionContext:
    now: datetime
    session_id: int
    symbols: list[str]
    markets: dict[str, MarketView]
    positions: list[dict[str, Any]]
    open_orders: list[dict[str, Any]]
    open_plans: list[dict[str, Any]]
    recent_trades: list[dict[str, Any]]
    stats: dict[str, Any]  # net_pnl, total_fees, total_llm_cost, start_of_day_equity, ...
    equity: float
    quote_balance: float
