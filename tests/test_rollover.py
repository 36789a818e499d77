"""Day rollover: a replay crossing UTC midnight opens a new session and forgets nothing.

The plan opened on day 1 is still enforced on day 2 (its stop fires there), and the
position carries over into the new session's snapshot; the audit stays clean.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.audit import audit
from bot.engine.schema import Action, ActionType, Decision
from db.models import Position, Session, Trade, TradePlan
from tests.crafted import FIVE_MIN_MS, WARMUP, write_path
from tests.loop_harness import ScriptedEngine, make_runtime, step

DAY1 = date(2023, 11, 14)
FIRST_CLOCK = datetime(2023, 11, 14, 23, 30, tzinfo=UTC)  # six iterations before midnight


def test_an_open_plan_crosses_midnight_and_its_stop_fires_on_day_two(sqlite_url, tmp_path):
    start_ms = int(FIRST_CLOCK.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    after = [100.0] * 9 + [98.5] * 3  # the drop closes at 00:20 on day 2
    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * WARMUP + after, start_ms=start_ms)
    engine = ScriptedEngine([Decision(actions=[Action(
        action=ActionType.BUY, symbol="TST/USDT", size=1.0, stop=99.0, target=110.0,
        reason="overnight")])])
    rt = make_runtime(sqlite_url, [path], engine, MAX_SPREAD_PCT=5, MAX_SLIPPAGE_PCT=5,
                      TRAIL_BREAKEVEN_PCT=0)
    step(rt, 8)  # through midnight: iterations at 23:30 … 00:05
    assert rt.now() == FIRST_CLOCK + timedelta(minutes=40)
    with rt.db() as db:
        sessions = list(db.scalars(select(Session).order_by(Session.date)))
        assert [s.date for s in sessions] == [DAY1, DAY1 + timedelta(days=1)]
        day1, day2 = sessions
        plan = db.scalars(select(TradePlan)).one()
        assert plan.session_id == day1.id and plan.status == "open"
        carried = db.scalars(select(Position).where(Position.session_id == day2.id)).one()
        assert carried.quantity == pytest.approx(1.0)
    step(rt, 4)
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
        sold = db.scalars(select(Trade).where(Trade.action == "SELL")).one()
        bought = db.scalars(select(Trade).where(Trade.action == "BUY")).one()
        assert plan.status == "closed" and plan.exit_reason.startswith("stop hit at 99")
        assert plan.closed_at.date() == DAY1 + timedelta(days=1)
        assert bought.session_id == day1.id and sold.session_id == day2.id
        assert sold.quantity == pytest.approx(bought.quantity)
        assert db.scalars(select(Position).where(Position.session_id == day2.id)).first() is None
        assert all(c.ok for c in audit(db)), [c for c in audit(db) if not c.ok]


def test_a_wick_in_the_first_candle_of_the_new_day_still_hits_the_stop(sqlite_url, tmp_path):
    """The new session's candle cache starts empty; the candle's low must not be lost."""
    start_ms = int(FIRST_CLOCK.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    midnight_candle = WARMUP + 5  # closes at 00:00, seen by day 2's first iteration
    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 9), start_ms=start_ms,
                      wicks={midnight_candle: (100.02, 98.0)})
    engine = ScriptedEngine([Decision(actions=[Action(
        action=ActionType.BUY, symbol="TST/USDT", size=1.0, stop=99.0, target=110.0,
        reason="overnight")])])
    rt = make_runtime(sqlite_url, [path], engine, MAX_SPREAD_PCT=5, MAX_SLIPPAGE_PCT=5,
                      TRAIL_BREAKEVEN_PCT=0)
    step(rt, 8)
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
        assert plan.status == "closed" and plan.exit_reason.startswith("stop hit at 99")
        closed_at = plan.closed_at
    assert closed_at == datetime(2023, 11, 15, 0, 0, tzinfo=UTC)
