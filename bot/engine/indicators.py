"""Technical indicators over a candle frame, and the compact summary engines read.

Both engines (rules and Gemini) see the same numbers: the rules engine trades on them and
the LLM's prompt shows them, so a trace of either engine can be read the same way. Only
the newest ``MAX_ROWS`` candles are used: every indicator here converges well within that
window, and the rules engine runs once per candle over long replays, where recomputing the
whole history each time would be quadratic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandas_ta as ta

MAX_ROWS = 300


@dataclass(frozen=True)
class IndicatorParams:
    """Lengths of the indicators; the defaults are the textbook ones."""

    ema_fast: int = 12
    ema_slow: int = 26
    rsi: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_length: int = 20
    bb_std: float = 2.0
    atr: int = 14

    @property
    def warmup(self) -> int:
        """Candles needed before every indicator has a value."""
        return max(self.ema_slow, self.macd_slow + self.macd_signal, self.bb_length, self.atr) + 1


DEFAULT_PARAMS = IndicatorParams()
COLUMNS = (
    "ema_fast", "ema_slow", "rsi", "macd", "macd_signal", "macd_hist",
    "bb_lower", "bb_mid", "bb_upper", "atr",
)


def compute(candles: pd.DataFrame, params: IndicatorParams = DEFAULT_PARAMS) -> pd.DataFrame:
    """The newest candles with one column per indicator (NaN until warmed up)."""
    frame = candles.tail(MAX_ROWS).reset_index(drop=True)
    return frame.assign(**_arrays(frame, params))


def _arrays(frame: pd.DataFrame, params: IndicatorParams) -> dict[str, np.ndarray]:
    """Indicator columns as arrays: built apart and attached once, which is several times
    faster than assigning DataFrame columns one by one."""
    length = len(frame)
    if length == 0:
        return {column: np.array([], dtype=float) for column in COLUMNS}
    close = frame["close"].astype(float)
    high = frame["high"].astype(float)
    low = frame["low"].astype(float)
    out = {
        "ema_fast": _series(ta.ema(close, length=params.ema_fast), length),
        "ema_slow": _series(ta.ema(close, length=params.ema_slow), length),
        "rsi": _series(ta.rsi(close, length=params.rsi), length),
    }
    macd = ta.macd(close, fast=params.macd_fast, slow=params.macd_slow, signal=params.macd_signal)
    for index, column in enumerate(("macd", "macd_hist", "macd_signal")):
        out[column] = _series(None if macd is None else macd.iloc[:, index], length)
    # Bollinger bands from pandas directly: ta.bbands computes five extra columns and is
    # ten times slower, which matters when a replay evaluates every candle.
    mid = close.rolling(params.bb_length).mean()
    std = close.rolling(params.bb_length).std(ddof=0)
    out["bb_mid"] = mid.to_numpy()
    out["bb_lower"] = (mid - params.bb_std * std).to_numpy()
    out["bb_upper"] = (mid + params.bb_std * std).to_numpy()
    out["atr"] = _series(ta.atr(high, low, close, length=params.atr), length)
    return out


def _series(values: pd.Series | None, length: int) -> np.ndarray:
    """pandas-ta answers None when there are fewer rows than the length."""
    if values is None:
        return np.full(length, math.nan)
    return values.to_numpy(dtype=float)


def summary(candles: pd.DataFrame, params: IndicatorParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """Latest values, rounded for a prompt: what a trader glances at, not the series.

    Memoised on the frame's identity (length, first and last candle): the rules engine and
    the prompt renderer both ask for the same summary in one decision, and closed candles
    never change.
    """
    if candles.empty:
        return {"candles": 0}
    last = candles.iloc[-1]
    key = (len(candles), str(candles["timestamp"].iloc[0]), str(last["timestamp"]),
           float(last["close"]), float(last["volume"]), params)
    return dict(_summary_cached(key, candles, params))


_CACHE: dict[tuple, dict[str, Any]] = {}
_CACHE_SIZE = 256


def _summary_cached(key: tuple, candles: pd.DataFrame,
                    params: IndicatorParams) -> dict[str, Any]:
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _summary(candles, params)
    return _CACHE[key]


def _summary(candles: pd.DataFrame, params: IndicatorParams) -> dict[str, Any]:
    frame = candles.tail(MAX_ROWS)
    arrays = _arrays(frame.reset_index(drop=True), params)
    last = {column: values[-1] for column, values in arrays.items()}
    prev = {column: values[-2] if len(values) > 1 else values[-1]
            for column, values in arrays.items()}
    result: dict[str, Any] = {"candles": len(candles),
                              "close": _round(float(frame["close"].iloc[-1]))}
    for column in COLUMNS:
        result[column] = _round(last[column])
    result["rsi_prev"] = _round(prev["rsi"])
    result["macd_hist_prev"] = _round(prev["macd_hist"])
    result["trend"] = _trend(last)
    return result


def _trend(row: dict[str, Any]) -> str:
    fast, slow = row["ema_fast"], row["ema_slow"]
    if not (_finite(fast) and _finite(slow)):
        return "unknown"
    return "up" if fast > slow else "down" if fast < slow else "flat"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float | np.floating) and math.isfinite(value)


def _round(value: Any) -> float | None:
    """Six significant digits: enough for decisions, and prices near 5e-05 keep meaning."""
    if not _finite(value):
        return None
    return float(f"{float(value):.6g}")
