"""The compiled indicator kernel gives the bits the plain-Python recurrences it replaced gave.

``indicators.fast_arrays`` runs its EMA, RSI, MACD, Bollinger and ATR recurrences as one
numba kernel. Prompts (audited traces) and decisions show these numbers, so the kernel must
not move a single bit: it is held here, over windows of every real candle file, to the
plain-Python/numpy code it replaced, which is kept below as the reference. (The
pandas-ta comparison in ``test_replay_speed_parts`` holds both to pandas-ta, except the
bands, which only this test holds exactly.)
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest

from bot.engine import indicators
from tests.conftest import candle_file

FILES = ["BTC_USDT-5m.csv", "ETH_BTC-5m.csv", "LTC_BTC-5m.csv", "ADA_BTC-5m.csv"]


def _reference(close: np.ndarray, high: np.ndarray, low: np.ndarray,
               params: indicators.IndicatorParams) -> dict[str, np.ndarray]:
    """``fast_arrays`` as it was before the kernel: Python float loops and numpy."""
    close, high, low = (np.ascontiguousarray(v, dtype=float) for v in (close, high, low))
    n = len(close)
    nan = np.full(n, math.nan)
    emas = {length: _ema(close, length) for length in
            {params.ema_fast, params.ema_slow, params.macd_fast, params.macd_slow}}
    out = {"ema_fast": emas[params.ema_fast], "ema_slow": emas[params.ema_slow],
           "rsi": _rsi(close, params.rsi)}
    fast_len, slow_len = sorted((params.macd_fast, params.macd_slow))
    if n >= slow_len + params.macd_signal - 1:
        macd = emas[fast_len] - emas[slow_len]
        first = int(np.argmax(~np.isnan(macd)))
        signal = nan.copy()
        signal[first:] = _ema(macd[first:], params.macd_signal)
        out.update(macd=macd, macd_signal=signal, macd_hist=macd - signal)
    else:
        out.update(macd=nan, macd_signal=nan, macd_hist=nan)
    mid, std = np.full(n, math.nan), np.full(n, math.nan)
    if n >= params.bb_length:
        windows = np.lib.stride_tricks.sliding_window_view(close, params.bb_length)
        mid[params.bb_length - 1:] = windows.mean(axis=1)
        std[params.bb_length - 1:] = windows.std(axis=1)
    out.update(bb_mid=mid, bb_lower=mid - params.bb_std * std,
               bb_upper=mid + params.bb_std * std)
    out["atr"] = _atr(high, low, close, params.atr)
    return out


def _ewm(values: np.ndarray, com: float) -> np.ndarray:
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
    seeded = values.copy()
    seeded[length - 1] = values[:length].sum() / length
    seeded[: length - 1] = math.nan
    return seeded


def _ema(close: np.ndarray, length: int) -> np.ndarray:
    if len(close) < length:
        return np.full(len(close), math.nan)
    return _ewm(_sma_seeded(close, length), (length - 1) / 2)


def _rma_com(length: int) -> float:
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


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, length: int) -> np.ndarray:
    n = len(close)
    if n < length + 1:
        return np.full(n, math.nan)
    span = high - low
    if (span == 0).any():
        span = span + sys.float_info.epsilon
    true_range = np.abs(span)
    prev = close[:-1]
    true_range[1:] = np.maximum(true_range[1:], np.maximum(np.abs(high[1:] - prev),
                                                           np.abs(prev - low[1:])))
    return _ewm(_sma_seeded(true_range, length), _rma_com(length))


def _assert_same_bits(got: np.ndarray, expected: np.ndarray, where: str) -> None:
    """Same NaN positions, and every other value equal bit for bit (so -0.0 != 0.0)."""
    missing = np.isnan(expected)
    assert np.array_equal(np.isnan(got), missing), where
    assert np.array_equal(got[~missing].view(np.int64), expected[~missing].view(np.int64)), where


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_kernel_equals_the_python_recurrences_bit_for_bit(name: str) -> None:
    """Every 7th 150-candle window the engine sees, and windows of every warm-up length."""
    candles = pd.read_csv(candle_file(name))
    close, high, low = (candles[c].to_numpy(dtype=float) for c in ("close", "high", "low"))
    params = indicators.DEFAULT_PARAMS
    for end in range(1, len(close) + 1, 7):
        lengths = (150,) if end % 91 else (1, 2, 13, 14, 15, 20, 26, 27, 33, 34, 35, 60, 300)
        for length in lengths:
            start = max(0, end - length)
            window = (close[start:end], high[start:end], low[start:end])
            got = indicators.fast_arrays(*window)
            expected = _reference(*window, params)
            for column in indicators.COLUMNS:
                _assert_same_bits(got[column], expected[column], f"{name} {column} {start}:{end}")


def test_kernel_edge_cases_equal_the_reference() -> None:
    """Flat candles (zero range: pandas-ta's epsilon shift), NaN prices, other lengths."""
    rng = np.random.default_rng(7)
    close = 100 + rng.normal(size=200).cumsum()
    cases = {
        "flat": (np.full(60, 5.0), np.full(60, 5.0), np.full(60, 5.0)),
        "zero range once": (close, close + 1, np.where(np.arange(200) == 50, close + 1, close - 1)),
        "nan inside": (np.where(np.arange(200) == 120, np.nan, close), close + 1, close - 1),
        "empty": (np.empty(0), np.empty(0), np.empty(0)),
        "long window": (close[:200], close[:200] + 2, close[:200] - 2),
    }
    params_list = [indicators.DEFAULT_PARAMS,
                   indicators.IndicatorParams(ema_fast=5, ema_slow=7, rsi=3, macd_fast=9,
                                              macd_slow=4, macd_signal=3, bb_length=3,
                                              bb_std=1.5, atr=2),
                   indicators.IndicatorParams(ema_slow=140, bb_length=130)]
    for label, (c, h, lo) in cases.items():
        for params in params_list:
            got = indicators.fast_arrays(c, h, lo, params)
            expected = _reference(c, h, lo, params)
            for column in indicators.COLUMNS:
                _assert_same_bits(got[column], expected[column], f"{label} {params} {column}")
