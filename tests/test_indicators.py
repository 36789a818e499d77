"""Indicators over the real candle file: values exist after warm-up and are plausible."""

from __future__ import annotations

import math

import pandas as pd

from bot.engine import indicators
from tests.conftest import candle_file


def test_indicators_on_real_candles() -> None:
    frame = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:500]
    out = indicators.compute(frame)
    last = out.iloc[-1]
    assert last["bb_lower"] < last["bb_mid"] < last["bb_upper"]
    assert 0 <= last["rsi"] <= 100 and last["atr"] > 0
    assert abs(last["macd_hist"] - (last["macd"] - last["macd_signal"])) < 1e-6
    summary = indicators.summary(frame)
    assert summary["candles"] == 500 and summary["trend"] in ("up", "down", "flat")
    assert all(summary[c] is not None for c in indicators.COLUMNS)


def test_short_and_empty_frames_give_none_not_errors() -> None:
    frame = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:5]
    summary = indicators.summary(frame)
    assert summary["rsi"] is None and summary["trend"] == "unknown"
    assert indicators.summary(frame.iloc[:0]) == {"candles": 0}
    assert math.isnan(indicators.compute(frame)["ema_slow"].iloc[-1])
