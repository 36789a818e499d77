"""Closed candles as column arrays: what the decision context hands the engine.

The store builds them (``db.decision_queries``) and the console's chart shares the column
names; the engine only reads them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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
