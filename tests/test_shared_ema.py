"""The chart's EMA is the engine's: one definition (``bot.model.averages``) serves both, so a
line on the chart is the very number a decision read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.engine.indicators import DEFAULT_PARAMS, MAX_ROWS, IndicatorParams, fast_arrays
from views._indicators import ema


def _walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))


def test_the_chart_draws_the_engines_ema() -> None:
    close = _walk(250, 7)
    for length in (9, 20, 50):
        engine = fast_arrays(close, close * 1.01, close * 0.99,
                             IndicatorParams(ema_fast=length))["ema_fast"]
        chart = ema(pd.Series(close), length)
        np.testing.assert_array_equal(chart.to_numpy(), engine)
        assert np.isnan(chart.iloc[length - 2]) and chart.iloc[length - 1] == close[:length].mean()


def test_a_window_shorter_than_the_span_has_no_ema() -> None:
    assert ema(pd.Series(_walk(10, 3)), 20).isna().all()


def test_the_charts_longer_ema_meets_the_engines_300_candle_one_at_the_newest() -> None:
    """The engine seeds its EMA on its newest MAX_ROWS candles, the chart on its whole frame;
    by the newest candle the seed has faded to nothing the chart can show."""
    close = _walk(900, 5)
    engine = fast_arrays(close[-MAX_ROWS:], close[-MAX_ROWS:] * 1.01, close[-MAX_ROWS:] * 0.99,
                         DEFAULT_PARAMS)
    for name, span in (("ema_fast", DEFAULT_PARAMS.ema_fast),
                       ("ema_slow", DEFAULT_PARAMS.ema_slow)):
        assert ema(pd.Series(close), span).iloc[-1] == pytest.approx(engine[name][-1], rel=1e-9)
