"""The runtime's copies of its own rows (bot/store.py) stay what the database holds.

Each test steps the real loop, then compares a copy with the rows it stands for, or writes
the rows from outside the step that mirrors them and checks the step still sees them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.decision_context import _positions
from bot.engine.schema import Action, ActionType, Decision
from bot.steps.plans import enforce_plans, is_quiet
from bot.steps.resync import resync_orders_and_positions
from db.decision_queries import positions
from db.engine import bound_engine
from db.market import newest_candle
from db.models import Position, TradePlan
from db.plans import create_plan
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step

SYMBOL = "BTC/USDT"


def buy(size: float = 0.05) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=SYMBOL, size=size,
                                    reason="mirror test")])


@pytest.fixture
def btc():
    return candle_file("BTC_USDT-5m.csv")


def test_the_newest_candles_mirrored_are_the_stored_ones(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt, 15)  # past an hour: the 1h series gains a candle too
    assert {key[2] for key in rt.store.candle_tips} == {"5m", "1h"}
    with bound_engine(rt.db).connect() as conn:
        for key, tip in rt.store.candle_tips.items():
            assert tuple(newest_candle(conn, *key)) == tip, key


def test_a_restart_reads_what_the_mirror_held_and_writes_the_same(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([buy()]))
    step(rt, 3)
    again = make_runtime(sqlite_url, [btc], ScriptedEngine([]))  # a restarted bot
    assert again.store.candle_tips == {} and again.store.positions is None
    step(again, 2)
    assert again.store.candle_tips.keys() == rt.store.candle_tips.keys()
    assert again.store.positions == rt.store.positions
    assert {tip[0] for tip in again.store.candle_tips.values()} != {
        tip[0] for tip in rt.store.candle_tips.values()}  # it moved on from there


def test_the_positions_a_decision_reads_off_the_store_are_the_stored_ones(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([buy()]))
    with bound_engine(rt.db).connect() as conn:
        for held in (False, True, True):  # flat, then the fill's rows, then restamped
            step(rt)
            stored = positions(conn, rt.session_id)
            assert bool(stored) == held
            kept = _positions(conn, rt.session_id, rt.store)
            assert [str(row) for row in kept] == [str(row) for row in stored]
            conn.rollback()  # the next read sees the next step's rows


def test_unchanged_positions_are_restamped_not_rewritten(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([buy()]))
    step(rt, 2)  # bought, and the fill booked
    with rt.db() as db:
        first = db.scalars(select(Position)).one()
    step(rt)
    resync_orders_and_positions(rt)
    with rt.db() as db:
        now = db.scalars(select(Position)).one()
    assert now.id == first.id and now.quantity == first.quantity
    assert now.exchange_timestamp == rt.now() > first.exchange_timestamp


def test_held_positions_are_stamped_once_a_step_by_the_market_data_transaction(
    sqlite_url, btc
) -> None:
    from sqlalchemy import event

    from bot.loop import run_iteration

    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([buy()]))
    step(rt, 3)  # bought, the fill booked, and a quiet step
    written: list[str] = []
    engine = bound_engine(rt.db)
    listener = lambda *args: written.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        run_iteration(rt)
        resync_orders_and_positions(rt)  # again at the same clock: nothing left to write
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    positions = [sql for sql in written if "positions" in sql and "SELECT" not in sql]
    assert len(positions) == 1 and positions[0].startswith("UPDATE")
    assert rt.store.positions_at == rt.now()
    with rt.db() as db:
        assert db.scalars(select(Position)).one().exchange_timestamp == rt.now()


def test_a_plan_written_after_plans_were_read_as_none_is_enforced(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt)
    assert rt.store.active_plans == []  # read: none active
    price = rt.quotes[SYMBOL].last
    with rt.db() as db:  # as the decision step writes one
        plan = create_plan(db, rt.now(), session_id=rt.session_id, symbol=SYMBOL, side="BUY",
                           entry_price=price, stop_price=price * 0.9,
                           target_price=price * 1.1, size=0.01, status="pending")
        db.commit()
    assert rt.store.active_plans is None  # to be read again
    enforce_plans(rt)  # no entry order: the plan is closed, so it was read
    with rt.db() as db:
        assert db.get(TradePlan, plan.id).status == "closed"
    assert rt.store.active_plans is None  # that write is read again next time too


def test_a_plan_rolled_back_does_not_re_arm_the_read(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt)
    assert not rt.store.orders_may_be_live and rt.store.active_plans == []
    with rt.db() as db:
        create_plan(db, rt.now(), session_id=rt.session_id, symbol=SYMBOL, side="BUY",
                    entry_price=1.0, stop_price=0.9, target_price=1.1, size=0.01,
                    status="pending")
        db.rollback()
    step(rt)
    assert rt.store.active_plans == [] and not rt.errors


def test_plans_read_in_a_session_that_rolls_back_are_read_again(sqlite_url, btc) -> None:
    """A rollback expires the plans its session loaded (the plans step's, when enforcing
    one fails): the store forgets them rather than hand out expired rows."""
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt)
    with rt.db() as db:
        assert rt.store.read_active_plans(db, rt.session_id) == []
        db.commit()  # a commit that wrote no plan keeps them (a cancel's, say)
        assert rt.store.active_plans == []
        db.scalars(select(TradePlan)).all()  # the next plan's work, in a new transaction
        db.rollback()
    assert rt.store.active_plans is None


def test_an_open_plan_is_read_again_only_when_it_must_act(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]), TRAIL_BREAKEVEN_PCT=0)
    step(rt)
    price = rt.quotes[SYMBOL].last
    rt.engine.decisions.append(Decision(actions=[Action(
        action=ActionType.BUY, symbol=SYMBOL, size=0.05, stop=price * 0.5, target=price * 2,
        reason="far levels")]))
    step(rt, 3)  # placed, filled, read as open
    (plan,) = rt.store.active_plans
    assert plan.status == "open" and is_quiet(rt, plan, rt.now())
    plan.stop_price = rt.quotes[SYMBOL].last * 1.01  # as if the levels had moved here
    assert not is_quiet(rt, plan, rt.now())
    enforce_plans(rt)  # reads the plan as stored: its real stop is still far away
    with rt.db() as db:
        assert db.get(TradePlan, plan.id).status == "open"
