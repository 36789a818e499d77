"""The decision-engine contract shared by the rules engine and Gemini.

An engine reads a ``DecisionContext`` (built from the database, never from the future) and
returns an ``EngineResult``: the parsed decision plus everything the trace must show. It
never places orders; the risk layer and the executor do that with what survives validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from bot.engine.schema import Decision
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


@dataclass
class EngineResult:
    decision: Decision
    engine: str
    model: str | None = None
    prompt: str = ""
    raw_response: str | None = None  # the answer the decision was taken from
    # Every text answer the model gave, in order, each as {"raw_response", "errors"}: an
    # answer asked again is kept beside the one that replaced it.
    answers: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    skipped: str | None = None  # why no call was made (min interval, cost cap)


class DecisionEngine(Protocol):
    name: str

    def decide(self, context: DecisionContext) -> EngineResult: ...
