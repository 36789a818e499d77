"""Technical indicators over a candle frame, and the compact summary engines read.

Both engines (rules and Gemini) see the same numbers: the rules engine trades on them and
the LLM's prompt shows them, so a trace of either engine can be read the same way. Only
the newest ``MAX_ROWS`` candles are used: every indicator here converges well within that
window, and the rules engine runs once per candle over long replays, where recomputing the
whole history each time would be quadratic.

pandas-ta defines the numbers (``compute`` calls it, and the tests hold the fast path to it
bit for bit). ``summary``, which runs at every decision, uses ``fast_arrays``: the same
recurrences (SMA-seeded EMA, Wilder's RMA, pandas' ``ewm`` update in the same float order)
on plain arrays, because pandas-ta's per-call overhead (about 9 ms for the ten columns of a
150-candle frame) was a third of a replay's time.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandas_ta as ta

from db.candles import CandleColumns

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


def fast_arrays(close: np.ndarray, high: np.ndarray, low: np.ndarray,
                params: IndicatorParams = DEFAULT_PARAMS) -> dict[str, np.ndarray]:
    """The columns of ``_arrays`` without pandas: equal to pandas-ta's to the last bit.

    Each branch mirrors one pandas-ta function (same minimum lengths, same seeds, same
    float operations in the same order), so a trace's numbers do not depend on which path
    computed them.
    """
    close = np.ascontiguousarray(close, dtype=float)
    high = np.ascontiguousarray(high, dtype=float)
    low = np.ascontiguousarray(low, dtype=float)
    n = len(close)
    nan = np.full(n, math.nan)
    emas = {length: _ema(close, length) for length in
            {params.ema_fast, params.ema_slow, params.macd_fast, params.macd_slow}}
    out = {"ema_fast": emas[params.ema_fast], "ema_slow": emas[params.ema_slow],
           "rsi": _rsi(close, params.rsi)}
    fast_len, slow_len = sorted((params.macd_fast, params.macd_slow))
    if n >= slow_len + params.macd_signal - 1:  # the default MACD reuses the trend EMAs
        macd = emas[fast_len] - emas[slow_len]
        first = int(np.argmax(~np.isnan(macd)))
        signal = nan.copy()
        signal[first:] = _ema(macd[first:], params.macd_signal)
        out.update(macd=macd, macd_signal=signal, macd_hist=macd - signal)
    else:
        out.update(macd=nan, macd_signal=nan, macd_hist=nan)
    out.update(_bbands(close, params.bb_length, params.bb_std))
    out["atr"] = _atr(high, low, close, params.atr)
    return out


def _ewm(values: np.ndarray, com: float) -> np.ndarray:
    """pandas' ``ewm(com=..., adjust=False).mean()``, its update written out as it is.

    Takes the centre of mass because pandas converts span and alpha to it first, and the
    alpha it then derives is what the float results depend on. The loop runs over Python
    floats (the same doubles): indexing numpy scalars cost more than the arithmetic.
    """
    alpha = 1.0 / (1.0 + com)
    factor = 1.0 - alpha
    if not len(values):
        return np.empty(0)
    items = values.tolist()
    weighted = items[0]
    old_wt = 1.0
    out = [weighted]
    for cur in items[1:]:
        observed = cur == cur
        if weighted == weighted:
            old_wt *= factor
            if observed:
                if weighted != cur:
                    weighted = (old_wt * weighted + alpha * cur) / (old_wt + alpha)
                old_wt = 1.0
        elif observed:
            weighted = cur
        out.append(weighted)
    return np.array(out, dtype=float)


def _sma_seeded(values: np.ndarray, length: int) -> np.ndarray:
    """pandas-ta's ``presma``: the first ``length`` values replaced by their mean."""
    seeded = values.copy()
    seeded[length - 1] = values[:length].sum() / length
    seeded[: length - 1] = math.nan
    return seeded


def _ema(close: np.ndarray, length: int) -> np.ndarray:
    if len(close) < length:
        return np.full(len(close), math.nan)
    return _ewm(_sma_seeded(close, length), (length - 1) / 2)  # ewm(span=length)


def _rma_com(length: int) -> float:
    """Wilder's smoothing, ``ewm(alpha=1/length)``, as pandas turns it into a centre of mass."""
    alpha = 1.0 / length
    return (1 - alpha) / alpha


def _rsi(close: np.ndarray, length: int) -> np.ndarray:
    n = len(close)
    if n < length + 1:
        return np.full(n, math.nan)
    diff = np.empty(n)
    diff[0] = math.nan
    diff[1:] = close[1:] - close[:-1]
    positive = np.where(diff < 0, 0.0, diff)
    negative = np.where(diff > 0, 0.0, diff)
    up, down = _ewm(positive, _rma_com(length)), _ewm(negative, _rma_com(length))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * up / (up + np.abs(down))


def _bbands(close: np.ndarray, length: int, width: float) -> dict[str, np.ndarray]:
    """Mean and population std of each full window.

    The one column not bit-equal to pandas: its rolling sums carry compensation terms
    across windows, so values differ in the 15th digit; prompts show five, and no rule
    reads the bands.
    """
    n = len(close)
    mid, std = np.full(n, math.nan), np.full(n, math.nan)
    if n >= length:
        windows = np.lib.stride_tricks.sliding_window_view(close, length)
        mid[length - 1:] = windows.mean(axis=1)
        std[length - 1:] = windows.std(axis=1)
    return {"bb_mid": mid, "bb_lower": mid - width * std, "bb_upper": mid + width * std}


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, length: int) -> np.ndarray:
    n = len(close)
    if n < length + 1:
        return np.full(n, math.nan)
    span = high - low
    if (span == 0).any():  # pandas-ta's non_zero_range shifts the whole series
        span = span + sys.float_info.epsilon
    true_range = np.abs(span)
    prev = close[:-1]
    true_range[1:] = np.maximum(true_range[1:], np.maximum(np.abs(high[1:] - prev),
                                                           np.abs(prev - low[1:])))
    return _ewm(_sma_seeded(true_range, length), _rma_com(length))


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
    key = (len(columns), stamps[0], stamps[-1], float(columns.close[-1]),
           float(columns.volume[-1]), params)
    return dict(_summary_cached(key, columns, params))


_CACHE: dict[tuple, dict[str, Any]] = {}
_CACHE_SIZE = 256


def _summary_cached(key: tuple, columns: CandleColumns,
                    params: IndicatorParams) -> dict[str, Any]:
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _summary(columns, params)
    return _CACHE[key]


def _summary(columns: CandleColumns, params: IndicatorParams) -> dict[str, Any]:
    """The newest ``MAX_ROWS`` rows, and only the two previous values the summary shows."""
    close, high, low = (values[-MAX_ROWS:] for values in
                        (columns.close, columns.high, columns.low))
    arrays = fast_arrays(close, high, low, params)
    last = {column: values[-1] for column, values in arrays.items()}
    result: dict[str, Any] = {"candles": len(columns), "close": _round(float(close[-1]))}
    for column in COLUMNS:
        result[column] = _round(last[column])
    result["rsi_prev"] = _round(_previous(arrays["rsi"]))
    result["macd_hist_prev"] = _round(_previous(arrays["macd_hist"]))
    result["trend"] = _trend(last)
    return result


def _previous(values: np.ndarray) -> Any:
    """The value before the newest (the newest when there is only one)."""
    return values[-2] if len(values) > 1 else values[-1]


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
