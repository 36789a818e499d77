"""The prompt's remembered candle lines give the prompt a fresh render gives.

``render_prompt`` keeps each series' candle lines between decisions and reuses them when the
candles are the same or moved by one. Traces are audited, so a prompt built from the kept
lines must equal, byte for byte, one rendered from nothing, however the candles move.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from bot.config import load_settings
from bot.engine import prompt
from bot.model.candles import CandleColumns, StoredCandles
from bot.model.decision import DecisionContext, MarketView
from tests.conftest import candle_file


def _columns(frame: pd.DataFrame) -> CandleColumns:
    stamps = pd.to_datetime(frame["timestamp"], unit="ms").to_numpy().astype("datetime64[us]")
    return CandleColumns(stamps, *(frame[c].to_numpy(dtype=float)
                                   for c in ("open", "high", "low", "close", "volume")))


def _context(candles: pd.DataFrame, end: int, hour_end: int) -> DecisionContext:
    five = candles.iloc[max(0, end - 150):end]
    hour = candles.iloc[max(0, hour_end - 60):hour_end:12]  # a slower series of other lengths
    view = MarketView("BTC/USDT", float(five["close"].iloc[-1]), None, None, None, None,
                      StoredCandles({"5m": _columns(five), "1h": _columns(hour)}))
    return DecisionContext(now=datetime(2024, 1, 1, tzinfo=UTC), session_id=1,
                           symbols=["BTC/USDT"], markets={"BTC/USDT": view}, positions=[],
                           open_orders=[], open_plans=[], recent_trades=[], stats={},
                           equity=10_000.0, quote_balance=10_000.0)


def test_kept_lines_render_as_a_fresh_prompt_would() -> None:
    candles = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:900]
    # moves by one, stays, jumps, goes back, starts short and grows past the prompt's window
    ends = [*range(3, 60), 60, 60, 75, 76, 77, 300, 299, *range(500, 560), 40, 41, 900]
    for budget in (3000, 900, 400):
        settings = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h",
                                 PROMPT_TOKEN_BUDGET=budget)
        prompt._LAST_SERIES.clear()
        for end in ends:
            context = _context(candles, end, end - end % 12)
            kept = prompt.render_prompt(context, settings)
            prompt._LAST_SERIES.clear()
            fresh = prompt.render_prompt(context, settings)
            assert kept == fresh, (budget, end)
            prompt.render_prompt(context, settings)  # leave this decision's lines kept


def test_lines_of_changed_candles_are_not_reused() -> None:
    """Same label, same window length, but a candle inside the window changed."""
    candles = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:200]
    settings = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h")
    before = _context(candles, 200, 192)
    prompt.render_prompt(before, settings)
    changed = candles.copy()
    changed.loc[180, "close"] = np.float64(changed.loc[180, "close"]) + 1
    after = _context(changed, 200, 192)
    prompt._LAST_SERIES.pop("BTC/USDT 1h", None)
    kept = prompt.render_prompt(after, settings)
    prompt._LAST_SERIES.clear()
    assert kept == prompt.render_prompt(after, settings)


def test_a_window_moving_across_a_gap_marks_the_row_before_it() -> None:
    """The row before a gap carries its time once the candle after the gap closes: the
    kept window's newest line changes then, and must not be reused as it was."""
    candles = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:200].drop(index=[100, 130])
    settings = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h")
    prompt._LAST_SERIES.clear()
    marked = 0
    for end in range(60, 160):
        context = _context(candles, end, end - end % 12)
        kept = prompt.render_prompt(context, settings)
        prompt._LAST_SERIES.clear()
        fresh = prompt.render_prompt(context, settings)
        assert kept == fresh, end
        marked += "\n@" in fresh.user
        prompt.render_prompt(context, settings)  # leave this decision's lines kept
    assert marked > prompt.BASE_ROWS  # the gaps were in the window, marked
