"""Technical indicators over a candle frame, and the compact summary engines read.

Both engines (rules and Gemini) see the same numbers: the rules engine trades on them and
the LLM's prompt shows them, so a trace of either engine can be read the same way. Only
the newest ``MAX_ROWS`` candles are used: every indicator here converges well within that
window, and the rules engine runs once per candle over long replays, where recomputing the
whole history each time would be quadratic.

pandas-ta defines the numbers (``compute`` calls it, and the tests hold the fast path to it
bit for bit). ``summary``, which runs at every decision, uses ``fast_arrays``' kernel: the same
recurrences (SMA-seeded EMA, Wilder's RMA, pandas' ``ewm`` update in the same float order)
on plain arrays (the averages in ``bot.model.averages``, which the console's chart draws
too), because pandas-ta's per-call overhead (about 9 ms for the ten columns of a
150-candle frame) was a third of a replay's time. Those recurrences run as one numba kernel:
as Python float loops they still cost 0.3 ms a decision, more than the rest of the engine.
The first call in a process loads the compiled kernel from ``__pycache__`` (compiling it
once per checkout, a few seconds).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas_ta import momentum, overlap, volatility  # pandas_ta's own __all__ exports none

from bot.model.averages import (
    EMA_FAST_SPAN,
    EMA_SLOW_SPAN,
    compiled,
    ema,
    ewm,
    pairwise_sum,
    sma_seeded,
    writable,
)
from bot.model.candles import CandleColumns

MAX_ROWS = 300
_EPSILON = sys.float_info.epsilon


@dataclass(frozen=True)
class IndicatorParams:
    """Lengths of the indicators; the defaults are the textbook ones."""

    ema_fast: int = EMA_FAST_SPAN
    ema_slow: int = EMA_SLOW_SPAN
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
_ROWS = len(COLUMNS)


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
        "ema_fast": _series(overlap.ema(close, length=params.ema_fast), length),
        "ema_slow": _series(overlap.ema(close, length=params.ema_slow), length),
        "rsi": _series(momentum.rsi(close, length=params.rsi), length),
    }
    macd = momentum.macd(close, fast=params.macd_fast, slow=params.macd_slow,
                         signal=params.macd_signal)
    for index, column in enumerate(("macd", "macd_hist", "macd_signal")):
        out[column] = _series(None if macd is None else macd.iloc[:, index], length)
    # Bollinger bands from pandas directly: ta.bbands computes five extra columns and is
    # ten times slower, which matters when a replay evaluates every candle.
    mid = close.rolling(params.bb_length).mean()
    std = close.rolling(params.bb_length).std(ddof=0)
    out["bb_mid"] = mid.to_numpy()
    out["bb_lower"] = (mid - params.bb_std * std).to_numpy()
    out["bb_upper"] = (mid + params.bb_std * std).to_numpy()
    out["atr"] = _series(volatility.atr(high, low, close, length=params.atr), length)
    return out


def fast_arrays(close: np.ndarray, high: np.ndarray, low: np.ndarray,
                params: IndicatorParams = DEFAULT_PARAMS) -> dict[str, np.ndarray]:
    """The columns of ``_arrays`` without pandas: equal to pandas-ta's to the last bit.

    One compiled call (``_kernel``) computes every column, because at each decision the
    recurrences as Python loops cost more than the rest of the engine together.
    """
    return dict(zip(COLUMNS, _rows(close, high, low, params, len(close)), strict=True))


def _rows(close: np.ndarray, high: np.ndarray, low: np.ndarray, params: IndicatorParams,
          bands: int) -> np.ndarray:
    """``_kernel``'s rows, the bands computed for the newest ``bands`` candles only."""
    return _kernel(writable(close), writable(high), writable(low), params.ema_fast,
                   params.ema_slow, params.rsi, params.macd_fast, params.macd_slow,
                   params.macd_signal, params.bb_length, float(params.bb_std), params.atr, bands)


@compiled
def _kernel(close: np.ndarray, high: np.ndarray, low: np.ndarray, ema_fast: int,
            ema_slow: int, rsi: int, macd_fast: int, macd_slow: int, macd_signal: int,
            bb_length: int, bb_std: float, atr: int, bands: int) -> np.ndarray:
    """One row per name in ``COLUMNS``, in that order; each branch mirrors one pandas-ta
    function (same minimum lengths, same seeds). The bands are NaN before the newest
    ``bands`` candles: the summary reads only the last (saves a quarter of the kernel)."""
    n = len(close)
    out = np.full((_ROWS, n), np.nan)
    out[0] = ema(close, ema_fast)
    out[1] = ema(close, ema_slow)
    out[2] = _rsi(close, rsi)
    fast_len, slow_len = min(macd_fast, macd_slow), max(macd_fast, macd_slow)
    if n >= slow_len + macd_signal - 1:
        # the same EMA computed again gives the same bits: reuse the columns above
        fast = out[0] if fast_len == ema_fast else ema(close, fast_len)
        slow = out[1] if slow_len == ema_slow else ema(close, slow_len)
        macd = fast - slow
        first = 0
        while first < n and np.isnan(macd[first]):
            first += 1
        first = first if first < n else 0  # np.argmax of an all-False mask
        out[3] = macd
        out[4, first:] = ema(macd[first:], macd_signal)
        out[5] = macd - out[4]
    _bbands(close, bb_length, bb_std, out[6], out[7], out[8], bands)
    out[9] = _atr(high, low, close, atr)
    return out


@compiled
def _rma_com(length: int) -> float:
    """Wilder's smoothing, ``ewm(alpha=1/length)``, as pandas turns it into a centre of mass."""
    alpha = 1.0 / length
    return (1 - alpha) / alpha


@compiled
def _rsi(close: np.ndarray, length: int) -> np.ndarray:
    n = len(close)
    if n < length + 1:
        return np.full(n, np.nan)
    positive = np.empty(n)
    negative = np.empty(n)
    positive[0] = negative[0] = np.nan
    for i in range(1, n):
        diff = close[i] - close[i - 1]
        positive[i] = 0.0 if diff < 0 else diff
        negative[i] = 0.0 if diff > 0 else diff
    up, down = ewm(positive, _rma_com(length)), ewm(negative, _rma_com(length))
    return 100 * up / (up + np.abs(down))


@compiled
def _bbands(close: np.ndarray, length: int, width: float, lower: np.ndarray,
            mid: np.ndarray, upper: np.ndarray, newest: int) -> None:
    """Mean and population std of each of the ``newest`` last full windows, as numpy's
    ``mean`` and ``std``.

    The one set of columns not bit-equal to pandas: its rolling sums carry compensation
    terms across windows, so values differ in the 15th digit; prompts show five, and no
    rule reads the bands.
    """
    squares = np.empty(length)
    for end in range(max(length, len(close) + 1 - newest), len(close) + 1):
        window = close[end - length:end]
        mean = pairwise_sum(window) / length
        for j in range(length):
            deviation = window[j] - mean
            squares[j] = deviation * deviation
        std = np.sqrt(pairwise_sum(squares) / length)
        mid[end - 1] = mean
        lower[end - 1] = mean - width * std
        upper[end - 1] = mean + width * std


@compiled
def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, length: int) -> np.ndarray:
    n = len(close)
    if n < length + 1:
        return np.full(n, np.nan)
    span = high - low
    if (span == 0).any():  # pandas-ta's non_zero_range shifts the whole series
        span = span + _EPSILON
    true_range = np.abs(span)
    for i in range(1, n):
        prev = close[i - 1]
        true_range[i] = _nan_max(true_range[i], _nan_max(abs(high[i] - prev),
                                                          abs(prev - low[i])))
    return ewm(sma_seeded(true_range, length), _rma_com(length))


@compiled
def _nan_max(a: float, b: float) -> float:
    """``np.maximum``: NaN if either is NaN."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


def _series(values: pd.Series | None, length: int) -> np.ndarray:
    """pandas-ta answers None when there are fewer rows than the length."""
    if values is None:
        return np.full(length, math.nan)
    return values.to_numpy(dtype=float)


def summary(candles: pd.DataFrame | CandleColumns,
            params: IndicatorParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """Latest values, rounded for a prompt: what a trader glances at, not the series.

    Memoised on the candles' identity (length, first and last candle): the rules engine and
    the prompt renderer both ask for the same summary in one decision, and closed candles
    never change.
    """
    if not len(candles):
        return {"candles": 0}
    columns = candles if isinstance(candles, CandleColumns) else CandleColumns.of(candles)
    stamps = columns.stamps
    # the stamps as Python objects: numpy's datetime64 scalars hash several times slower
    key = (len(columns), *stamps[::len(stamps) - 1 or 1].tolist(), float(columns.close[-1]),
           float(columns.volume[-1]), params)
    found = _CACHE.get(key)
    if found is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        found = _CACHE[key] = _summary(columns, params)
    return dict(found)


_CACHE: dict[tuple, dict[str, Any]] = {}
_CACHE_SIZE = 256


def _summary(columns: CandleColumns, params: IndicatorParams) -> dict[str, Any]:
    """The newest ``MAX_ROWS`` rows, and only the two previous values the summary shows."""
    close, high, low = (values[-MAX_ROWS:] for values in
                        (columns.close, columns.high, columns.low))
    # per column the values before the newest and the newest (one value for one candle),
    # as Python floats
    tails = dict(zip(COLUMNS, _rows(close, high, low, params, 1)[:, -2:].tolist(),
                     strict=True))
    result: dict[str, Any] = {"candles": len(columns), "close": _round(float(close[-1]))}
    for column in COLUMNS:
        result[column] = _round(tails[column][-1])
    result["rsi_prev"] = _round(tails["rsi"][0])
    result["macd_hist_prev"] = _round(tails["macd_hist"][0])
    result["trend"] = _trend(tails["ema_fast"][-1], tails["ema_slow"][-1])
    return result


def _trend(fast: float, slow: float) -> str:
    if not (_finite(fast) and _finite(slow)):
        return "unknown"
    return "up" if fast > slow else "down" if fast < slow else "flat"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float | np.floating) and math.isfinite(value)


def _round(value: Any) -> float | None:
    """Six significant digits: enough for decisions, and prices near 5e-05 keep meaning."""
    if type(value) is float:  # the summary's values: spare ``_finite``'s type checks
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if not _finite(value):
        return None
    return float(f"{float(value):.6g}")
