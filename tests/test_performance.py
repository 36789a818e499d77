"""Performance figures: equal to empyrical's on the same returns, and right on cases worked
out by hand (the expected numbers below are arithmetic on paper, not our code's output)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import empyrical
import numpy as np
import pandas as pd
import pytest

from bot.model.performance import longest_drawdown, performance, trip_figures
from bot.model.round_trips import RoundTrip
from db.performance import plotted
from db.queries_replays import MAX_CURVE_POINTS

DAY0 = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)


def steps(equities: list[float], *, every: timedelta = timedelta(days=1),
          exposure: list[float] | None = None, prices: list[dict] | None = None) -> pd.DataFrame:
    return pd.DataFrame({
        "time": [DAY0 + i * every for i in range(len(equities))], "equity": equities,
        "exposure": exposure or [0.0] * len(equities),
        "prices": prices or [{"BTC/USDT": 100.0}] * len(equities)})


def trip(net: float, hours: float = 1.0, fees: float = 0.0, symbol: str = "BTC/USDT"
         ) -> RoundTrip:
    return RoundTrip(symbol=symbol, direction="long", opened_at=DAY0,
                     closed_at=DAY0 + timedelta(hours=hours), size=1.0, entry_value=100.0,
                     exit_size=1.0, exit_value=100.0 + net + fees, gross_pnl=net + fees,
                     fees=fees)


def test_ratios_on_a_hand_worked_case() -> None:
    """Opening 100 at 23:00, then daily closes 110, 99, 108.9 at 23:00 of the next days:
    returns 0 (the opening day), +10 %, -10 %, +10 %; mean 0.1/4, sample deviation
    √(0.0275/3), so Sharpe = 0.025 / √(0.0275/3) × √365; downside deviation √(0.01/4), so
    Sortino = 0.025 / 0.05 × √365. Peak 110, trough 99: drawdown 10 %, never recovered:
    48 hours under water. Total return 8.9 %."""
    result = performance(steps([100, 110, 99, 108.9]), [], 0.0)
    m = result.metrics
    assert m["days"] == 4
    assert m["sharpe"] == pytest.approx(0.025 / math.sqrt(0.0275 / 3) * math.sqrt(365))
    assert m["sortino"] == pytest.approx(0.5 * math.sqrt(365))
    assert m["max_drawdown_pct"] == pytest.approx(10.0)
    assert m["max_drawdown_hours"] == pytest.approx(48.0)
    assert m["total_return_pct"] == pytest.approx(8.9)
    assert list(result.equity["drawdown_pct"].round(6)) == [0, 0, -10, -1]


def test_trip_figures_by_hand() -> None:
    """Nets +3, +1, -2 held 1, 2 and 3 hours: profit factor 4/2, expectancy 2/3, win rate
    2 of 3, average win 2, average loss -2, average holding 120 minutes."""
    figures = trip_figures([trip(3, 1), trip(1, 2), trip(-2, 3)])
    assert figures["profit_factor"] == pytest.approx(2.0)
    assert figures["expectancy"] == pytest.approx(2 / 3)
    assert figures["win_rate_pct"] == pytest.approx(200 / 3)
    assert (figures["avg_win"], figures["avg_loss"]) == (2, -2)
    assert figures["avg_holding_minutes"] == pytest.approx(120)


def test_shares_of_gross_exposure_and_buy_and_hold_by_hand() -> None:
    """Gross 10 with fees 4 and LLM cost 1: shares 40 % and 10 %. Exposed on 1 of 4 steps:
    25 %. BTC 100 → 150 and ETH 10 → 5: buy and hold (+50 % - 50 %) / 2 = 0 %."""
    prices = [{"BTC/USDT": 100.0, "ETH/USDT": 10.0}] * 3 + [{"BTC/USDT": 150.0, "ETH/USDT": 5.0}]
    result = performance(steps([100, 100, 100, 106], exposure=[0, 5, 0, 0], prices=prices),
                         [trip(6, fees=4)], 1.0)
    m = result.metrics
    assert (m["fees_share_of_gross_pct"], m["llm_cost_share_of_gross_pct"]) == (40, 10)
    assert m["exposure_time_pct"] == 25
    assert m["buy_and_hold_pct"] == pytest.approx(0.0)


def test_a_loss_has_no_share_of_gross_and_one_day_no_ratios() -> None:
    m = performance(steps([100, 99], every=timedelta(minutes=5)), [trip(-3, fees=1)], 0.5).metrics
    assert m["fees_share_of_gross_pct"] is None and m["llm_cost_share_of_gross_pct"] is None
    assert m["sharpe"] is None and m["sortino"] is None  # one daily return: no deviation


def test_monthly_and_weekly_returns_by_hand() -> None:
    """Opening 100 on 1 January 23:00, 110 at the end of January, 99 at the end of February:
    January +10 %, February -10 %."""
    when = [DAY0, datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 2, 27, tzinfo=UTC)]
    frame = pd.DataFrame({"time": when, "equity": [100, 110, 99], "exposure": [0, 0, 0],
                          "prices": [{}] * 3})
    months = performance(frame, [], 0.0).returns["month"]
    assert [p.strftime("%Y-%m") for p in months["period"]] == ["2026-01", "2026-02"]
    assert list(months["return_pct"].round(9)) == [10, -10]


def test_longest_drawdown_ends_when_the_peak_is_regained() -> None:
    """Peak 120 at hour 1, back to 120 at hour 4: 3 hours; later 1 hour under 130."""
    equity = pd.Series([100, 120, 90, 110, 120, 130, 125, 131],
                       index=pd.date_range(DAY0, periods=8, freq="h"))
    assert longest_drawdown(equity) == pd.Timedelta(hours=3)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_figures_equal_empyricals_on_the_same_returns(seed: int) -> None:
    """A random 5-minute equity over three weeks: our Sharpe, Sortino and max drawdown are
    the library's on the same daily (and step) returns, taken here with pandas."""
    rng = np.random.default_rng(seed)
    equity = 10_000 * np.cumprod(1 + rng.normal(0.0001, 0.002, 21 * 288))
    frame = steps(list(equity), every=timedelta(minutes=5))
    m = performance(frame, [], 0.0).metrics
    series = pd.Series(equity, index=pd.DatetimeIndex(frame["time"]))
    closes = series.groupby(series.index.date).last()
    daily = closes / pd.concat([pd.Series([equity[0]]), closes.iloc[:-1]]).to_numpy() - 1
    assert m["days"] == len(daily) == 22
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(daily, annualization=365))
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(daily, annualization=365))
    assert m["max_drawdown_pct"] == pytest.approx(
        -empyrical.max_drawdown(series.pct_change().dropna()) * 100)
    assert m["total_return_pct"] == pytest.approx(
        empyrical.cum_returns_final(daily) * 100)


def test_a_long_curve_is_thinned_for_the_browser_keeping_its_trough_and_end() -> None:
    equity = [100.0 + (i % 7) for i in range(10 * MAX_CURVE_POINTS)]
    equity[3 * MAX_CURVE_POINTS + 5] = 50.0  # the deepest drawdown, between two kept points
    curve = performance(steps(equity, every=timedelta(minutes=5)), [], 0.0).equity
    shown = plotted(curve)
    assert len(shown) <= MAX_CURVE_POINTS + 2
    assert shown["drawdown_pct"].min() == curve["drawdown_pct"].min()
    assert shown["time"].iloc[-1] == curve["time"].iloc[-1]


def test_a_span_with_no_step_has_every_figure_with_no_value() -> None:
    empty = steps([]).astype({"equity": float})
    full = performance(steps([100, 101]), [], 0.0).metrics
    none = performance(empty, [], 0.0).metrics
    assert set(none) == set(full)
    assert none["sharpe"] is None and none["total_return_pct"] is None
