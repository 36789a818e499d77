"""Days of a run, in SESSION_TIMEZONE: which day a fill belongs to, and what a day starts with.

A fill is stamped with the clock at which it happened (the step's time on the paper venue) and
is booked into the session of the day that time falls in, even when the fill sync only sees
it after the rollover. A session starts with the account as the rollover found it: cash plus
holdings at the market, so a day's starting equity plus its PnL (realized, less fees, plus the
change in unrealized) is its ending equity and the next day's starting equity.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from db.models import LLMTrace, Session, SessionStatsCache, Trade
from db.queries import overview_figures, session_info
from db.queries_replays import equity_curve, run_summary
from db.sessions import trading_day
from db.traces import execution_result
from tests.conftest import candle_file
from tests.crafted import FIVE_MIN_MS, WARMUP, write_path
from tests.loop_harness import ScriptedEngine, make_runtime, step

HOLD = Decision()
LOOSE = {"MAX_SPREAD_PCT": 5, "MAX_SLIPPAGE_PCT": 5, "TRAIL_BREAKEVEN_PCT": 0}


def _buy(size: float, **extra: object) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol="TST/USDT", size=size,
                                    stop=50.0, target=200.0, reason="across midnight",
                                    **extra)])


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata"])
def test_fills_around_local_midnight_carry_their_time_and_sit_in_their_day(
        db_url, tmp_path, timezone):
    """A market buy at 23:55 (booked by the 00:00 step, after the rollover) is stamped 23:55
    and belongs to the day it happened; a resting limit that the candle closing at 00:00
    trades through fills at the step's clock, 00:00, and belongs to the new day."""
    zone = ZoneInfo(timezone)
    first = datetime(2023, 11, 14, 23, 45, tzinfo=zone).astimezone(UTC)  # 3 steps before midnight
    midnight = datetime(2023, 11, 15, 0, 0, tzinfo=zone).astimezone(UTC)
    start_ms = int(first.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    closes = [100.0] * (WARMUP + 8)
    # the candle that closes at midnight trades down to 98: through the limit at 99
    wick = WARMUP + 2
    path = write_path(tmp_path / "TST_USDT-5m.csv", closes, start_ms=start_ms,
                      wicks={wick: (100.02, 98.0)})
    engine = ScriptedEngine([
        HOLD,
        _buy(2.0, order_type="limit", price=99.0),  # 23:50: rests
        _buy(3.0),  # 23:55: a market buy, filled at once
    ])
    rt = make_runtime(db_url, [path], engine, SESSION_TIMEZONE=timezone,
                      PLAN_MAX_PER_SYMBOL=2, **LOOSE)
    assert rt.now() == first
    step(rt, 6)  # 23:45 … 00:10
    with rt.db() as db:
        sessions = {s.id: s for s in db.scalars(select(Session))}
        trades = list(db.scalars(select(Trade).order_by(Trade.timestamp)))
    assert [(t.action, t.quantity) for t in trades] == [("BUY", 3.0), ("BUY", 2.0)]
    market, limit = trades
    assert market.timestamp == midnight - timedelta(minutes=5)
    assert limit.timestamp == midnight and limit.price == 99.0
    day1 = midnight.astimezone(zone).date() - timedelta(days=1)
    assert sessions[market.session_id].date == day1
    assert sessions[limit.session_id].date == day1 + timedelta(days=1)
    for trade in trades:
        assert sessions[trade.session_id].date == trading_day(trade.timestamp, timezone)
    # Neither fill was booked when the new day opened; the new day starts holding the one
    # of 23:55 at the market (100), and without the cash the one of 00:00 paid.
    spent = market.quantity * market.price + market.fee
    assert sessions[limit.session_id].starting_balance == pytest.approx(
        10_000.0 - spent + market.quantity * 100.0, abs=1e-9)


def _btc(size: float) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=size,
                                    stop=8_000.0, target=40_000.0, reason="hold overnight")])


SELL_ALL = Decision(actions=[Action(action=ActionType.SELL, symbol="BTC/USDT", reason="take it")])


def _btc_slice(folder: Path, steps: int) -> Path:
    """The first ``steps`` steps (after the warm-up) of the real BTC_USDT 5m candles."""
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines()
    path = folder / "BTC_USDT-5m.csv"
    path.write_text("\n".join(lines[: 1 + WARMUP + steps]) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata"])
def test_each_day_starts_where_the_day_before_ended_while_holding(sqlite_url, tmp_path, timezone):
    """Real candles over three local midnights, holding across them: each session's starting
    equity is the account at the rollover, valued at the market, and every figure that shows
    a day's equity agrees with the equity the loop recorded at each step."""
    steps = 900  # from 2023-01-03 09:25 UTC: 3 midnights in UTC and in Kolkata
    script = {0: _btc(0.03), 200: _btc(0.02), 500: _btc(0.04)}
    rt = make_runtime(sqlite_url, [_btc_slice(tmp_path, steps)], None,
                      SESSION_TIMEZONE=timezone, PLAN_MAX_PER_SYMBOL=2,
                      PLAN_MAX_AGE_MINUTES=10_000, **LOOSE)
    # the sell goes out at the last step before the second midnight: its fill is booked
    # by the first step of the next day
    midnights = [i for i in range(1, steps) if trading_day(
        rt.now() + timedelta(minutes=5 * i), timezone) != trading_day(
        rt.now() + timedelta(minutes=5 * (i - 1)), timezone)]
    assert len(midnights) == 3
    script[midnights[1] - 1] = SELL_ALL
    rt.engine = ScriptedEngine([script.get(i, HOLD) for i in range(steps)])
    step(rt, steps)
    with rt.db() as db:
        sessions = list(db.scalars(select(Session).order_by(Session.date)))
        trades = list(db.scalars(select(Trade).order_by(Trade.id)))
        points: dict[int, list[tuple[datetime, dict]]] = {}
        for trace in db.scalars(select(LLMTrace).order_by(LLMTrace.id)):
            points.setdefault(trace.session_id, []).append((trace.created_at, json.loads(
                execution_result(db, trace.session_id, trace.created_at,
                                 trace.execution_result))))
        caches = {c.session_id: c.start_of_day_equity for c in db.scalars(select(SessionStatsCache))}
        overview = {s.id: overview_figures(db, session_info(db, s.id)) for s in sessions}
        curves = {s.id: equity_curve(db, [s.id], s.starting_balance) for s in sessions}
        summary = run_summary(db, [s.id for s in sessions], 10_000.0, rt.run_name)
    assert len(sessions) == 4 and [t.action for t in trades] == ["BUY", "BUY", "SELL", "SELL",
                                                                   "BUY"]
    assert sum(1 for s in sessions if points[s.id][0][1]["exposure"] > 0) == 2  # begin holding
    assert sessions[0].starting_balance == 10_000.0
    rollovers = {s.created_at for s in sessions[1:]}
    # no fill at a rollover's clock, so each day's first point is its start (a fill at the
    # clock would count in the point but, being the new day's, not in the start)
    assert not any(t.timestamp in rollovers for t in trades)
    by_day = {s.date: s.id for s in sessions}
    for trade in trades:
        assert trade.session_id == by_day[trading_day(trade.timestamp, timezone)]
    for k, session in enumerate(sessions):
        first_at, first = points[session.id][0]
        end = points[sessions[k + 1].id][0][1] if k + 1 < len(sessions) else points[session.id][-1][1]
        day = [t for t in trades if t.session_id == session.id]
        pnl = sum(t.realized_pnl - t.fee for t in day) + end["unrealized_pnl"] - first["unrealized_pnl"]
        assert first_at == session.created_at
        assert session.starting_balance == pytest.approx(first["equity"], abs=1e-6), session.date
        assert caches[session.id] == pytest.approx(session.starting_balance, abs=1e-9)
        assert session.starting_balance + pnl == pytest.approx(end["equity"], abs=1e-6), session.date
        last = points[session.id][-1][1]
        assert overview[session.id]["equity"] == pytest.approx(last["equity"], abs=1e-6)
        curve = curves[session.id]
        assert curve["buy_and_hold"].iloc[0] == pytest.approx(session.starting_balance)
        assert curve["equity"].iloc[0] == pytest.approx(session.starting_balance, abs=1e-6)
    assert summary["final_equity"] == pytest.approx(points[sessions[-1].id][-1][1]["equity"])


def test_a_venue_fault_at_midnight_delays_the_new_day_rather_than_guessing_its_equity(
        sqlite_url, tmp_path, monkeypatch):
    """The new day's starting equity needs the venue's balance. When the venue does not
    answer at the rollover, the day before goes on until it does; the new day is not opened
    with a made-up equity (the configured starting balance)."""
    from bot.loop import run_iteration
    from bot.venue.base import TransientVenueError

    first = datetime(2023, 11, 14, 23, 50, tzinfo=UTC)
    start_ms = int(first.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 6), start_ms=start_ms)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([_buy(3.0)]), **LOOSE)
    step(rt, 2)  # 23:50 buys, 23:55
    balance = rt.venue.fetch_balance
    faults = iter([TransientVenueError("timeout at midnight")])

    def flaky_balance():
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return balance()

    monkeypatch.setattr(rt.venue, "fetch_balance", flaky_balance)
    run_iteration(rt)  # 00:00: the venue does not answer
    assert rt.session_day == first.date()
    assert any("waits for the venue" in e for e in rt.errors)
    rt.venue.advance()
    step(rt)  # 00:05: it does
    with rt.db() as db:
        day2 = db.scalars(select(Session).where(Session.date == first.date() + timedelta(days=1))
                          ).one()
        bought = db.scalars(select(Trade)).one()
    assert day2.starting_balance == pytest.approx(
        10_000.0 - bought.quantity * bought.price - bought.fee + bought.quantity * 100.0)


@pytest.mark.parametrize("move", ["gained before midnight", "lost before midnight"])
def test_the_daily_loss_caps_count_the_day_from_its_start_not_from_the_entry(
        db_url, tmp_path, move):
    """A position bought yesterday and carried over midnight: the daily loss caps judge
    today's loss, from the market at the rollover, as the day's starting equity does. They
    counted the unrealized PnL since the entry as today's: a gain made before midnight hid a
    loss today above MAX_DAILY_LOSS (the bot bought again), and a loss made before midnight
    refused every entry today, where nothing was lost."""
    first = datetime(2023, 11, 14, 23, 45, tzinfo=UTC)  # midnight is the 4th step
    start_ms = int(first.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    # 23:45 buys 9 at 100; the market stands at midnight at 110 (or 90) and at 00:05 at 100
    at_midnight, at_five = (110.0, 100.0) if move == "gained before midnight" else (90.0, 90.0)
    closes = [100.0] * WARMUP + [at_midnight] * 3 + [at_five] * 3
    path = write_path(tmp_path / "TST_USDT-5m.csv", closes, start_ms=start_ms)
    engine = ScriptedEngine([_buy(9.0), HOLD, HOLD, HOLD, _buy(1.0)])
    rt = make_runtime(db_url, [path], engine, PLAN_MAX_PER_SYMBOL=2, MAX_DAILY_LOSS=50,
                      MAX_DAILY_LOSS_PCT=50, **LOOSE)
    step(rt, 6)  # 23:45 … 00:10, which books what 00:05 bought
    with rt.db() as db:
        last = db.scalars(select(LLMTrace).order_by(LLMTrace.id.desc()).offset(1)).first()
        assert last is not None
        outcome = execution_result(db, last.session_id, last.created_at,
                                   last.execution_result) or ""
        bought = list(db.scalars(select(Trade).where(Trade.action == "BUY")))
    if move == "gained before midnight":  # today lost 9 x 10 = 90 > 50
        assert "max_daily_loss" in outcome, outcome
        assert len(bought) == 1
    else:  # the market has not moved today
        assert "max_daily_loss" not in outcome, outcome
        assert len(bought) == 2
