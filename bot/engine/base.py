"""The decision-engine contract shared by the rules engine and Gemini.

An engine reads a ``DecisionContext`` (built from the database, never from the future) and
returns an ``EngineResult``: the parsed decision plus everything the trace must show. It
never places orders; the risk layer and the executor do that with what survives validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from bot.engine.schema import Decision


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


CANDLE_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class CandleColumns:
    """Closed candles as column arrays, oldest first: what the indicator summary and the
    prompt's candle rows read.

    Taking a column out of a DataFrame builds a Series, and at a dozen per decision that
    cost more than the indicators themselves; the stored candles are arrays already.
    """

    stamps: np.ndarray  # datetime64[us] (UTC) from the store; as the frame held them otherwise
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> CandleColumns:
        return cls(frame["timestamp"].to_numpy(),
                   *(frame[c].to_numpy(dtype=float) for c in CANDLE_COLUMNS[1:]))


class StoredCandles(Mapping[str, pd.DataFrame]):
    """A symbol's closed candles per timeframe, as columns, with frames built on demand.

    The rules engine and the prompt read the columns (``candle_columns``); a frame is only
    built for whoever asks for one (Gemini's tools, a price without a ticker).
    """

    def __init__(self, columns: dict[str, CandleColumns]) -> None:
        self._columns = columns
        self._frames: dict[str, pd.DataFrame] = {}

    def columns(self, timeframe: str) -> CandleColumns | None:
        return self._columns.get(timeframe)

    def __getitem__(self, timeframe: str) -> pd.DataFrame:
        frame = self._frames.get(timeframe)
        if frame is None:
            frame = self._frames[timeframe] = _frame(self._columns[timeframe])
        return frame.copy(deep=False)  # a caller's change must not reach the next caller

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _frame(columns: CandleColumns) -> pd.DataFrame:
    if not len(columns):
        return pd.DataFrame(columns=CANDLE_COLUMNS)
    frame: dict[str, Any] = {
        "timestamp": pd.DatetimeIndex(columns.stamps).tz_localize("UTC")}
    for name in CANDLE_COLUMNS[1:]:
        frame[name] = getattr(columns, name)
    return pd.DataFrame(frame)


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
    raw_response: str | None = None
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
