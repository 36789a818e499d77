"""Performance figures: equal to empyrical's on the same returns, right on cases worked out
by hand (the expected numbers below are arithmetic on paper, not our code's output), and the
step figures the database computes equal to a step-by-step computation in pandas."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.model.performance import EquityFigures, performance, trip_figures
from bot.model.round_trips import RoundTrip
from db.engine import make_engine, session_factory
from db.models import EquityStep, Session
from db.performance_rollups import equity_figures
from db.queries_replays import MAX_CURVE_POINTS

DAY0 = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
RUNS = itertools.count()  # each recorded set of steps is a run of its own


def steps(db, equities: list[float], *, every: timedelta = timedelta(days=1),
          exposure: list[float] | None = None, prices: list[dict] | None = None,
          times: list[datetime] | None = None) -> EquityFigures | None:
    """Record these steps in a session of their own and read back their figures."""
    session = Session(date=DAY0.date(), kind="replay", run_name=f"steps-{next(RUNS)}")
    db.add(session)
    db.flush()
    for k, equity in enumerate(equities):
        db.add(EquityStep(session_id=session.id,
                          created_at=times[k] if times else DAY0 + k * every,
                          equity=equity, exposure=(exposure or [0.0] * len(equities))[k],
                          prices=json.dumps((prices or [{"BTC/USDT": 100.0}] * len(equities))[k])))
    db.commit()
    return equity_figures(db, [session.id])


def trip(net: float, hours: float = 1.0, fees: float = 0.0, symbol: str = "BTC/USDT"
         ) -> RoundTrip:
    return RoundTrip(symbol=symbol, direction="long", opened_at=DAY0,
                     closed_at=DAY0 + timedelta(hours=hours), size=1.0, entry_value=100.0,
                     exit_size=1.0, exit_value=100.0 + net + fees, gross_pnl=net + fees,
                     fees=fees)


def test_ratios_on_a_hand_worked_case(db_session) -> None:
    """Opening 100 at 23:00, then daily closes 110, 99, 108.9 at 23:00 of the next days:
    returns 0 (the opening day), +10 %, -10 %, +10 %; mean 0.1/4, sample deviation
    √(0.0275/3), so Sharpe = 0.025 / √(0.0275/3) × √365; downside deviation √(0.01/4), so
    Sortino = 0.025 / 0.05 × √365. Peak 110, trough 99: drawdown 10 %, never recovered:
    48 hours under water. Total return 8.9 %."""
    result = performance(steps(db_session, [100, 110, 99, 108.9]), [], 0.0)
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


def test_shares_of_gross_exposure_and_buy_and_hold_by_hand(db_session) -> None:
    """Gross 10 with fees 4 and LLM cost 1: shares 40 % and 10 %. Exposed on 1 of 4 steps:
    25 %. BTC 100 → 150 and ETH 10 → 5: buy and hold (+50 % - 50 %) / 2 = 0 %."""
    prices = [{"BTC/USDT": 100.0, "ETH/USDT": 10.0}] * 3 + [{"BTC/USDT": 150.0, "ETH/USDT": 5.0}]
    result = performance(steps(db_session, [100, 100, 100, 106], exposure=[0, 5, 0, 0],
                               prices=prices),
                         [trip(6, fees=4)], 1.0)
    m = result.metrics
    assert (m["fees_share_of_gross_pct"], m["llm_cost_share_of_gross_pct"]) == (40, 10)
    assert m["exposure_time_pct"] == 25
    assert m["buy_and_hold_pct"] == pytest.approx(0.0)


def test_a_loss_has_no_share_of_gross_and_one_day_no_ratios(db_session) -> None:
    m = performance(steps(db_session, [100, 99], every=timedelta(minutes=5)), [trip(-3, fees=1)],
                    0.5).metrics
    assert m["fees_share_of_gross_pct"] is None and m["llm_cost_share_of_gross_pct"] is None
    assert m["sharpe"] is None and m["sortino"] is None  # one daily return: no deviation


def test_monthly_and_weekly_returns_by_hand(db_session) -> None:
    """Opening 100 on 1 January 23:00, 110 at the end of January, 99 at the end of February:
    January +10 %, February -10 %."""
    when = [DAY0, datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 2, 27, tzinfo=UTC)]
    months = performance(steps(db_session, [100, 110, 99], times=when, prices=[{}] * 3), [],
                         0.0).returns["month"]
    assert [p.strftime("%Y-%m") for p in months["period"]] == ["2026-01", "2026-02"]
    assert list(months["return_pct"].round(9)) == [10, -10]


def test_longest_drawdown_ends_when_the_peak_is_regained(db_session) -> None:
    """Peak 120 at hour 1, back to 120 at hour 4: 3 hours; later 1 hour under 130."""
    found = steps(db_session, [100, 120, 90, 110, 120, 130, 125, 131], every=timedelta(hours=1))
    assert found is not None and found.max_drawdown_hours == 3


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_figures_equal_empyricals_on_the_same_returns(db_session, seed: int) -> None:
    """A random 5-minute equity over three weeks: our Sharpe, Sortino and max drawdown are
    the library's on the same daily (and step) returns, taken here with pandas."""
    rng = np.random.default_rng(seed)
    equity = 10_000 * np.cumprod(1 + rng.normal(0.0001, 0.002, 21 * 288))
    m = performance(steps(db_session, [float(e) for e in equity], every=timedelta(minutes=5)),
                    [], 0.0).metrics
    series = pd.Series(equity, index=pd.date_range(DAY0, periods=len(equity), freq="5min"))
    closes = series.groupby(series.index.date).last()
    daily = closes / pd.concat([pd.Series([equity[0]]), closes.iloc[:-1]]).to_numpy() - 1
    assert m["days"] == len(daily) == 22
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(daily, annualization=365))
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(daily, annualization=365))
    assert m["max_drawdown_pct"] == pytest.approx(
        -empyrical.max_drawdown(series.pct_change().dropna()) * 100)
    assert m["total_return_pct"] == pytest.approx(
        empyrical.cum_returns_final(daily) * 100)


def test_a_long_curve_is_thinned_for_the_browser_keeping_its_trough_and_end(db_session) -> None:
    equity = [100.0 + (i % 7) for i in range(10 * MAX_CURVE_POINTS)]
    equity[3 * MAX_CURVE_POINTS + 5] = 50.0  # the deepest drawdown, between two kept points
    found = steps(db_session, equity, every=timedelta(minutes=5))
    assert found is not None
    shown = found.curve
    assert MAX_CURVE_POINTS <= len(shown) <= MAX_CURVE_POINTS + 2
    assert shown["drawdown_pct"].min() == pytest.approx((50 / 106 - 1) * 100)
    assert shown["time"].iloc[-1] == DAY0 + (len(equity) - 1) * timedelta(minutes=5)
    assert list(shown["time"]) == sorted(shown["time"])


def test_a_span_with_no_step_has_every_figure_with_no_value(db_session) -> None:
    assert steps(db_session, []) is None
    full = performance(steps(db_session, [100, 101]), [], 0.0).metrics
    none = performance(None, [], 0.0).metrics
    assert set(none) == set(full)
    assert none["sharpe"] is None and none["total_return_pct"] is None


def reference(times: list[datetime], equity: list[float], exposure: list[float]) -> dict:
    """The step figures computed step by step in pandas (empyrical's max drawdown), as the
    figures were before the database computed them."""
    series = pd.Series(equity, index=pd.DatetimeIndex(times))
    longest, peak_value, peak_time = pd.Timedelta(0), -math.inf, None
    for when, value in zip(series.index, equity, strict=True):
        if value >= peak_value:
            if peak_time is not None:
                longest = max(longest, when - peak_time)
            peak_value, peak_time = value, when
    if peak_time is not None and equity[-1] < peak_value:
        longest = max(longest, series.index[-1] - peak_time)
    deepest = float(empyrical.max_drawdown(series.pct_change().dropna()))
    return {"closes": series.resample("D").last().dropna(),
            "max_drawdown_pct": abs(deepest if math.isfinite(deepest) else 0.0) * 100,
            "max_drawdown_hours": longest.total_seconds() / 3600,
            "exposure_time_pct": float((pd.Series(exposure) > 0).mean() * 100),
            "drawdown_pct": (series / series.cummax() - 1) * 100}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([90.0, 95.0, 100.0, 100.0, 104.0, 110.0]),
                          st.integers(0, 9 * 3600), st.sampled_from([0.0, 0.0, 1.0])),
                min_size=1, max_size=40))
def test_the_databases_step_figures_equal_pandas_step_by_step(db_session, rows) -> None:
    """Equities that tie and repeat their peaks, steps minutes to hours apart across day
    ends: closes, max drawdown and its duration, exposure and the curve as pandas finds
    them stepping through every row."""
    times = list(np.cumsum([gap for _, gap, _ in rows]))
    when = [DAY0 + timedelta(seconds=int(t)) for t in times]
    equity, exposure = [e for e, _, _ in rows], [x for _, _, x in rows]
    found = steps(db_session, equity, exposure=exposure, times=when)
    expected = reference(when, equity, exposure)
    assert found is not None
    assert list(found.closes.index) == list(expected["closes"].index)
    assert list(found.closes) == list(expected["closes"])
    assert found.max_drawdown_pct == pytest.approx(expected["max_drawdown_pct"], rel=1e-12)
    assert found.max_drawdown_hours == expected["max_drawdown_hours"]
    assert found.exposure_time_pct == expected["exposure_time_pct"]
    assert (found.opening, found.final, found.first, found.last) == (
        equity[0], equity[-1], when[0], when[-1])
    assert list(found.curve["drawdown_pct"]) == list(expected["drawdown_pct"])


def test_step_figures_on_postgresql(postgres_url) -> None:
    """The day a step falls in and the time between peaks, as PostgreSQL computes them."""
    when = [DAY0 + timedelta(hours=h) for h in (0, 1, 2, 3, 26, 27)]  # 23:00 on 1 January on
    equity = [100.0, 120.0, 90.0, 120.0, 110.0, 100.0]
    with session_factory(make_engine(postgres_url))() as db:
        found = steps(db, equity, exposure=[0, 1, 1, 0, 0, 0], times=when)
    expected = reference(when, equity, [0, 1, 1, 0, 0, 0])
    assert found is not None
    assert list(found.closes.index) == list(expected["closes"].index)
    assert list(found.closes) == [100.0, 120.0, 100.0]
    assert found.max_drawdown_hours == expected["max_drawdown_hours"] == 24
    assert found.max_drawdown_pct == pytest.approx(25.0)
    assert found.exposure_time_pct == pytest.approx(100 / 3)
