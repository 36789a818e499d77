"""An exit owed across a restart: a plan's exit that the venue's faults kept from being
placed is sent again at the next iteration whatever the price does meanwhile, and a crash
before that iteration must not forget it.

The journal holds what is owed (the plan open, its exit order failed), so a restarted
runtime, built from the database alone, owes what the one before it owed. The paper venue,
store and loop are the real ones; the crash abandons the runtime as a kill would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.loop import run_iteration
from bot.runtime import Runtime
from db.commands import enqueue_command
from db.models import Order, Trade, TradePlan
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, SendsRefused, make_runtime, step
from tests.test_kill import Crash, crash_before_selling

SYMBOL = "TST/USDT"
SETTINGS = {"MAX_SPREAD_PCT": 5, "MAX_SLIPPAGE_PCT": 5, "TRAIL_BREAKEVEN_PCT": 0,
            "ORDER_MAX_ATTEMPTS": 1}
# the dip to 95 hits the stop of 97; every candle after it is back at 100
DIP_THEN_BACK = [100, 100, 100, 95, 100, 100, 100, 100, 100]


def entry() -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=SYMBOL, size=1.0, stop=97.0,
                                    target=120.0, reason="owed test")])


def venue_of(rt: Runtime) -> SendsRefused:
    assert isinstance(rt.venue, SendsRefused)
    return rt.venue


def runtime(url: str, path: Path, decisions: list[Decision] | None = None) -> Runtime:
    """The run, started or restarted from the database alone; its venue answers until
    ``venue_of(rt).down`` is set."""
    return make_runtime(url, [path], ScriptedEngine(decisions or []), venue_class=SendsRefused,
                        **SETTINGS)


def the_plan(rt: Runtime) -> TradePlan:
    with rt.db() as db:
        return db.scalars(select(TradePlan)).one()


def sells(rt: Runtime) -> list[Trade]:
    with rt.db() as db:
        return list(db.scalars(select(Trade).where(Trade.action == "SELL")))


def exits(rt: Runtime) -> list[Order]:
    with rt.db() as db:
        return list(db.scalars(select(Order).where(Order.purpose == "exit").order_by(Order.id)))


def stop_exit_failed(url: str, path: Path, decisions: list[Decision] | None = None) -> Runtime:
    """A plan bought at 100 whose stop of 97 the dip hits while every send times out: its
    exit fails, and the plan is open again with the price back above its stop."""
    rt = runtime(url, path, [entry(), *(decisions or [])])
    step(rt, 3)
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)
    venue_of(rt).down = True
    step(rt, 3)  # to the dip to 95, then the candle back to 100: the exit fails twice
    assert exits(rt) and all(o.status == "failed" for o in exits(rt))
    assert the_plan(rt).status == "open" and rt.quotes[SYMBOL].last == 100
    return rt


def test_a_stop_hit_whose_exit_failed_is_sold_after_a_restart(sqlite_url, tmp_path) -> None:
    """The bot crashes before the venue answers again. The restarted bot sells at its first
    iteration, though the price never reaches the stop again: before, it re-armed the plan
    and held the position its stop had called out."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", DIP_THEN_BACK)
    stop_exit_failed(sqlite_url, path)  # then the crash: that runtime is abandoned
    rt = runtime(sqlite_url, path)
    step(rt)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "stop hit at 97"
    assert [t.quantity for t in sells(rt)] == [pytest.approx(1.0)]
    assert runtime(sqlite_url, path).owed_exits == {}  # paid: a later restart owes nothing


def test_an_update_moving_the_levels_leaves_the_exit_owed_across_a_restart(
        sqlite_url, tmp_path) -> None:
    """The engine widens the stop below the price after the failed exit: the stop was hit
    and its exit is owed still, as it is without a restart."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", DIP_THEN_BACK)
    widen = Decision(actions=[Action(action=ActionType.UPDATE_PLAN, plan_id=1, stop=90.0,
                                     reason="widen")])
    rt = stop_exit_failed(sqlite_url, path)
    rt.engine = ScriptedEngine([widen])
    step(rt)
    assert the_plan(rt).stop_price == 90.0 and the_plan(rt).status == "open"
    rt = runtime(sqlite_url, path)
    step(rt)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "stop hit at 97"
    assert [t.quantity for t in sells(rt)] == [pytest.approx(1.0)]


def test_a_close_that_failed_is_sent_after_a_restart_and_sells_once(sqlite_url, tmp_path) -> None:
    """The operator's close fails too while the venue is down: the plan owes the close now,
    and the restarted bot sells it once, for the operator's reason."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", DIP_THEN_BACK)
    rt = stop_exit_failed(sqlite_url, path)
    with rt.db() as db:
        enqueue_command(db, "close", SYMBOL)
    run_iteration(rt)  # the close is refused in words, to be retried (``retry_later``)
    assert any("could not flatten" in error for error in rt.errors), rt.errors
    assert the_plan(rt).status == "open" and sells(rt) == []
    rt = runtime(sqlite_url, path)
    step(rt, 2)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == exits(rt)[-1].reason
    assert [t.quantity for t in sells(rt)] == [pytest.approx(1.0)]


class DownAtStart(SendsRefused):
    """The paper exchange, timing out on every order from the restart on."""

    down = True


def test_an_exit_a_crash_left_unsent_and_its_resend_failed_is_owed(sqlite_url, tmp_path) -> None:
    """The bot crashes between journaling its stop exit and sending it, and the restart's
    resend times out: the plan is re-armed as a closing plan whose exit died. That exit too
    was kept from being placed by the venue's faults, so it is owed, as it is to the
    restart after: before, the plan held on once the price was back above its stop."""
    # a wick through the stop in a candle that closes back at 100: every look after it is
    # above the stop
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100] * 9, wicks={203: (100.1, 95.0)})
    rt = runtime(sqlite_url, path, [entry()])
    crash_before_selling(rt)
    with pytest.raises(Crash):
        step(rt, 6)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), venue_class=DownAtStart,
                      **SETTINGS)
    assert [o.status for o in exits(rt)] == ["failed"]  # the resend at the start
    venue_of(rt).down = False
    step(rt, 3)  # the plan re-armed, then candles at 100 that never reach the stop
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "stop hit at 97"
    assert [t.quantity for t in sells(rt)] == [pytest.approx(1.0)]
