"""Performance composed from closed sessions' rollups and the open day's rows equals the
same figures read from every row: steps against the step-by-step reference
(``tests.test_performance.reference``), round trips against grouping every fill."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.model.performance import buy_and_hold_pct, by_symbol, trip_figures
from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.migrate import alembic_config, upgrade
from db.models import EquityStep, LLMTrace, PerformanceRollup, Session, Trade
from db.performance import span_performance
from db.performance_rollups import roll_up_closed, roll_up_every_run, rolled_prefix
from db.queries_replays import run_session_ids
from db.round_trips import round_trips
from db.sessions import in_order
from tests.conftest import candle_file
from tests.test_performance import reference

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
RUNS = itertools.count()
TRIP_KEYS = ("round_trips", "win_rate_pct", "profit_factor", "expectancy", "avg_win",
             "avg_loss", "avg_holding_minutes", "gross_pnl", "fees", "net_pnl")

steps_ = st.tuples(st.just("step"), st.sampled_from([90.0, 95.0, 100.0, 100.0, 104.0, 110.0]),
                   st.sampled_from([0.0, 0.0, 1.0]), st.integers(60, 9 * 3600))
fills_ = st.tuples(st.just("fill"), st.sampled_from(["BTC/USDT", "ETH/USDT"]),
                   st.sampled_from(["BUY", "SELL"]), st.sampled_from([1.0, 2.0, 3.0]),
                   st.sampled_from([90.0, 100.0, 110.0]), st.booleans(),
                   st.integers(60, 9 * 3600))


def record(db, events: list[tuple]) -> list[int]:
    """A replay run of these events, one session per UTC day from DAY0; a fill marked late
    is booked in the next day's session (its order's fill arrived after the rollover)."""
    run, now, sessions, trade = f"rolled-{next(RUNS)}", DAY0, {}, itertools.count()

    def session(day: int) -> int:
        if day not in sessions:
            row = Session(date=(DAY0 + timedelta(days=day)).date(), kind="replay",
                          run_name=run, mode="PAPER", venue="paper", starting_balance=100.0,
                          created_at=DAY0 + timedelta(days=day))
            db.add(row)
            db.flush()
            sessions[day] = row.id
        return sessions[day]

    late: list[tuple[int, Trade]] = []

    def book_late(before_day: int) -> None:
        """A late fill is booked after the rollover: after every fill of its own day."""
        while late and late[0][0] < before_day:
            day, fill = late.pop(0)
            fill.session_id = session(day + 1)
            db.add(fill)
            db.flush()

    for event in events:
        now += timedelta(seconds=event[-1])
        day = (now - DAY0).days
        book_late(day)
        if event[0] == "step":
            _, equity, exposure, _ = event
            db.add(EquityStep(session_id=session(day), created_at=now, equity=equity,
                              exposure=exposure, prices=json.dumps({"BTC/USDT": equity})))
            db.add(LLMTrace(session_id=session(day), created_at=now, cost=equity / 1000))
            continue
        _, symbol, side, quantity, price, booked_late, _ = event
        fill = Trade(session_id=session(day), timestamp=now, symbol=symbol, action=side,
                     quantity=quantity, price=price, fee=quantity * 0.1, venue="paper",
                     trade_id=f"{run}-{next(trade)}")
        if booked_late:
            late.append((day, fill))
        else:
            db.add(fill)
            db.flush()
    session((now - DAY0).days)
    book_late((now - DAY0).days + 1)
    db.commit()
    return [sessions[d] for d in sorted(sessions)]


def assert_composed_equals_rows(db, ids: list[int], start: datetime | None,
                                end: datetime | None) -> None:
    result, still_open = span_performance(db, ids, start, end)
    query = select(EquityStep.created_at, EquityStep.equity, EquityStep.exposure,
                   EquityStep.prices).where(
        EquityStep.session_id.in_(ids))
    if start is not None and end is not None:
        query = query.where(EquityStep.created_at >= start, EquityStep.created_at < end)
    rows = db.execute(query.order_by(EquityStep.created_at, EquityStep.id)).all()
    m = result.metrics
    if rows:
        times, equity, exposure = ([r[k] for r in rows] for k in range(3))
        expected = reference(times, equity, exposure)
        assert m["starting_equity"] == equity[0] and m["final_equity"] == equity[-1]
        assert m["max_drawdown_pct"] == pytest.approx(expected["max_drawdown_pct"], rel=1e-12)
        assert m["max_drawdown_hours"] == expected["max_drawdown_hours"]
        assert m["exposure_time_pct"] == pytest.approx(expected["exposure_time_pct"])
        assert list(result.returns["day"]["equity"]) == list(expected["closes"])
        priced = [json.loads(r.prices) for r in rows if json.loads(r.prices)]
        assert m["buy_and_hold_pct"] == pytest.approx(buy_and_hold_pct(priced[0], priced[-1]))
    else:
        assert m["final_equity"] is None
    cost = select(func.coalesce(func.sum(LLMTrace.cost), 0.0)).where(
        LLMTrace.session_id.in_(ids))
    if start is not None and end is not None:
        cost = cost.where(LLMTrace.created_at >= start, LLMTrace.created_at < end)
    assert m["llm_cost"] == pytest.approx(db.scalar(cost), rel=1e-9, abs=1e-12)
    trips = round_trips(db, ids, start, end)
    closed = [t for t in trips if t.closed_at is not None]
    expected_trips = trip_figures(closed)
    for key in TRIP_KEYS:
        if expected_trips[key] is None:
            assert m[key] is None, key
        else:
            assert m[key] == pytest.approx(expected_trips[key], rel=1e-9, abs=1e-9), key
    expected_by_symbol = by_symbol(closed)
    assert list(result.by_symbol["symbol"]) == list(expected_by_symbol["symbol"])
    assert result.by_symbol.drop(columns="symbol").to_numpy(dtype=float).ravel() == (
        pytest.approx(expected_by_symbol.drop(columns="symbol").to_numpy(dtype=float).ravel(),
                      rel=1e-9, abs=1e-9, nan_ok=True))
    assert sorted(t.fill_ids[0] for t in still_open) == sorted(
        t.fill_ids[0] for t in trips if t.closed_at is None)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.one_of(steps_, fills_), min_size=1, max_size=40), st.booleans(),
       st.integers(0, 4), st.integers(1, 5))
def test_composed_figures_equal_the_rows(db_session, events, finished, first, days) -> None:
    """Steps that tie and repeat peaks, fills that flip positions, trips held across days,
    fills booked in the session after their day: the run's figures and a span's of whole
    days, from rollups of its closed sessions, equal those of every row."""
    ids = record(db_session, events)
    roll_up_closed(db_session, ids, None if finished else ids[-1])
    assert len(rolled_prefix(db_session, in_order(db_session, ids))) == len(ids) - (
        not finished)
    assert_composed_equals_rows(db_session, ids, None, None)
    start = DAY0 + timedelta(days=first)
    assert_composed_equals_rows(db_session, ids, start, start + timedelta(days=days))


def test_a_trip_across_days_with_a_fill_booked_late(db_session) -> None:
    """Bought on day 0, partly sold on day 1 by a fill booked on day 2, flipped short on
    day 2 (two trips closed: the long, and the short a buy on day 3 flips long again, left
    open with an ETH one): every day but the last rolled up."""
    events = [("step", 100.0, 0.0, 3600), ("fill", "BTC/USDT", "BUY", 3.0, 100.0, False, 60),
              ("step", 110.0, 1.0, 86_400), ("fill", "BTC/USDT", "SELL", 1.0, 110.0, True, 60),
              ("step", 95.0, 1.0, 86_400), ("fill", "BTC/USDT", "SELL", 3.0, 90.0, False, 60),
              ("step", 104.0, 1.0, 86_400), ("fill", "BTC/USDT", "BUY", 2.0, 100.0, False, 60),
              ("fill", "ETH/USDT", "BUY", 1.0, 100.0, False, 60)]
    ids = record(db_session, events)
    assert roll_up_closed(db_session, ids, ids[-1]) == len(ids) - 1
    assert_composed_equals_rows(db_session, ids, None, None)
    result, still_open = span_performance(db_session, ids)
    assert result.metrics["round_trips"] == 2
    assert [t.symbol for t in still_open] == ["BTC/USDT", "ETH/USDT"]


def test_rollups_on_both_stores_and_an_upgrade_backfills_them(db_url) -> None:
    """A hundred random events on SQLite and PostgreSQL; the rollups the upgrade's backfill
    writes are the ones written as sessions close."""
    rng = random.Random(5)
    events = [("step", rng.choice([90.0, 100.0, 110.0]), rng.choice([0.0, 1.0]),
               rng.randint(600, 6 * 3600)) if rng.random() < 0.6 else
              ("fill", rng.choice(["BTC/USDT", "ETH/USDT"]), rng.choice(["BUY", "SELL"]),
               rng.choice([1.0, 2.0]), rng.choice([90.0, 110.0]), rng.random() < 0.2,
               rng.randint(600, 6 * 3600)) for _ in range(100)]
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = record(db, events)
        assert roll_up_every_run(db) == len(ids) - 1  # a replay not finished: all but its last
        written = dict(db.execute(select(PerformanceRollup.session_id,
                                         PerformanceRollup.trips)).all())
        assert_composed_equals_rows(db, ids, None, None)
    command.downgrade(alembic_config(db_url), "0014_compact_storage")  # before the rollups
    upgrade(db_url)
    with session_factory(engine)() as db:
        assert dict(db.execute(select(PerformanceRollup.session_id,
                                      PerformanceRollup.trips)).all()) == written
        assert db.scalar(select(func.count()).select_from(PerformanceRollup)) == len(ids) - 1
    engine.dispose()


def replay_cut_short(tmp_path) -> tuple[Path, str, dict]:
    """A real replay of three days of ``BTC_USDT-5m.csv`` into a new SQLite file, stopped
    after its second: its file, the database's URL and the run's summary."""
    cut = tmp_path / "BTC_USDT-5m.csv"
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:3 * 288 + 1]))
    url = f"sqlite:///{tmp_path / 'replays.db'}"
    return cut, url, run_replay(ReplayArgs([cut], url), progress=False, max_steps=2 * 288)


def test_the_loop_rolls_up_each_day_as_it_ends(tmp_path) -> None:
    """A real replay cut short on its third day: the two days it rolled over are rolled up
    (the open one is not), as a backfill after the fact would write them, and the run's
    figures from them equal its rows'; finishing it rolls up the last day too."""
    cut, url, summary = replay_cut_short(tmp_path)
    engine = make_engine(url)
    with session_factory(engine)() as db:
        ids = run_session_ids(db, summary["run_name"])
        written = dict(db.execute(select(PerformanceRollup.session_id,
                                         PerformanceRollup.trips)).all())
        assert sorted(written) == in_order(db, ids)[:-1] and len(ids) == 3
        assert_composed_equals_rows(db, ids, None, None)
        db.query(PerformanceRollup).delete()
        db.commit()
        assert roll_up_every_run(db) == 2
        assert dict(db.execute(select(PerformanceRollup.session_id,
                                      PerformanceRollup.trips)).all()) == written
    run_replay(ReplayArgs([cut], url), progress=False)
    with session_factory(engine)() as db:
        ids = run_session_ids(db, summary["run_name"])
        assert len(rolled_prefix(db, in_order(db, ids))) == len(ids)
        assert_composed_equals_rows(db, ids, None, None)
    engine.dispose()


def test_a_fill_booked_into_a_rolled_up_day_is_counted(db_url, tmp_path) -> None:
    """A BUY decided at a day's last step fills there, and the next step's fill sync books it
    into that day (its timestamp's), after the rollover has rolled the day up. The run's
    Trades totals and round trips, read through the rollups, are its rows'."""
    from bot.engine.schema import Action, ActionType, Decision
    from db.queries_trading import TradeFilter, trade_totals
    from tests.crafted import FIVE_MIN_MS, WARMUP, write_path
    from tests.loop_harness import ScriptedEngine, make_runtime, step

    first = datetime(2023, 11, 14, 23, 30, tzinfo=UTC)
    start_ms = int(first.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    candles = write_path(tmp_path / "TST_USDT-5m.csv",
                         [100.0] * (WARMUP + 5) + [100.0 + k * 0.1 for k in range(600)],
                         start_ms=start_ms)
    engine = ScriptedEngine([])
    rt = make_runtime(db_url, [candles], engine, kind="live", run_name="late",
                      MAX_SPREAD_PCT=5, MAX_SLIPPAGE_PCT=5, TRAIL_BREAKEVEN_PCT=0)
    step(rt, 5)  # 23:30 .. 23:50
    engine.decisions = [Decision(actions=[Action(action=ActionType.BUY, symbol="TST/USDT",
                                                 size=1.0, stop=90.0, target=200.0)])]
    step(rt, 3)  # the BUY at 23:55; the rollover at 00:00, then its fill booked
    engine.decisions = [Decision(actions=[Action(action=ActionType.SELL, symbol="TST/USDT")])]
    step(rt, 300)  # past the next midnight: the day of the SELL is rolled up too
    with rt.db() as db:
        ids = rt.session_ids(db)
        rows = list(db.scalars(select(Trade).where(Trade.session_id.in_(ids))))
        assert [t.action for t in rows] == ["BUY", "SELL"]
        assert db.scalar(select(func.count()).select_from(PerformanceRollup)
                         .where(PerformanceRollup.session_id.in_(ids))) == 2
        totals = trade_totals(db, TradeFilter(session_ids=tuple(ids)))
        metrics = span_performance(db, ids)[0].metrics
    fees = sum(t.fee for t in rows)
    assert (totals["count"], totals["fees"]) == (2, pytest.approx(fees))
    assert totals["realized_pnl"] == pytest.approx(sum(t.realized_pnl for t in rows))
    assert metrics["round_trips"] == 1
    assert metrics["net_pnl"] == pytest.approx(sum(t.realized_pnl for t in rows) - fees)


def test_a_late_abandoned_call_booked_into_a_rolled_up_day_is_counted(db_url, tmp_path) -> None:
    """A close-all abandons the decision an LLM is still thinking over at a day's last
    step; the call answers after the rollover rolled that day up, and its cost is booked
    on its trace, in that day's session. The run's LLM cost, read through the rollups, is
    its traces' (the rollup kept the day's cost without it)."""
    import threading

    from bot.engine.base import DecisionContext, EngineResult
    from bot.loop import _has_urgent
    from db.commands import enqueue_command
    from tests.crafted import FIVE_MIN_MS, WARMUP, write_path
    from tests.loop_harness import ScriptedEngine, make_runtime, step
    from tests.waiting import wait_for

    class ThinksThroughMidnight(ScriptedEngine):
        """Once ``slow``, its next call takes a close-all in and answers when released,
        costing 1.0 as a priced model's call does."""

        slow = False
        release = threading.Event()

        def decide(self, context: DecisionContext) -> EngineResult:
            if self.slow:
                self.slow = False
                with rt.db() as db:
                    enqueue_command(db, "close-all")
                assert self.release.wait(30)
            result = super().decide(context)
            result.cost = 1.0
            return result

    first = datetime(2023, 11, 14, 23, 40, tzinfo=UTC)
    start_ms = int(first.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    candles = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 20),
                         start_ms=start_ms)
    engine = ThinksThroughMidnight([])
    rt = make_runtime(db_url, [candles], engine, kind="live", run_name="late-call")
    rt.urgent_check = lambda: _has_urgent(rt)  # as run_forever watches for commands
    try:
        step(rt, 3)  # 23:40 .. 23:50
        engine.slow = True
        step(rt)  # 23:55: the call abandoned for the close-all
        (day, _, call), = rt.abandoned_calls
        step(rt, 2)  # the rollover at 00:00 rolls the day up
        with rt.db() as db:
            assert db.get(PerformanceRollup, day) is not None and rt.session_id != day
    finally:
        engine.release.set()
    wait_for(call.done, timeout=30, every=0.05)
    step(rt)  # books what the call cost, into its day
    with rt.db() as db:
        ids = rt.session_ids(db)
        traced = db.scalar(select(func.sum(LLMTrace.cost)).where(LLMTrace.session_id.in_(ids)))
        abandoned = db.scalar(select(LLMTrace).where(LLMTrace.session_id == day,
                                                     LLMTrace.status == "abandoned"))
        assert abandoned is not None and abandoned.cost == 1.0
        metrics = span_performance(db, ids)[0].metrics
    assert metrics["llm_cost"] == pytest.approx(traced)
