"""The lookups a loop step makes read as much on a year of history as on a day: counted in
SQLite's virtual machine instructions (deterministic for the same rows), on a run with few
orders and on one with thousands of finished ones, each with the same live orders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.event import listen

from bot.engine.schema import Action, ActionType, Decision
from db.engine import bound_engine, make_engine, session_factory
from db.migrate import upgrade
from db.models import Order, Session
from db.orders import any_live_order, exits_of_plan, live_order_of_plan, live_orders
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step

LIVE = 3


def _run(url: str, days: int, orders_a_day: int) -> list[int]:
    """A replay run of ``days`` sessions, each with finished orders, and ``LIVE`` live
    orders in the last; the run's session ids."""
    factory = session_factory(make_engine(url))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with factory() as db:
        ids = []
        for day in range(days):
            row = Session(date=date(2024, 1, 1) + timedelta(days=day), kind="replay",
                          run_name="flat", starting_balance=1000.0)
            db.add(row)
            db.flush()
            ids.append(row.id)
        rows = [{"session_id": sid, "client_order_id": f"td-{sid}-{n}", "order_id": f"{sid}-{n}",
                 "symbol": "BTC/USDT", "side": "BUY", "type": "market", "amount": 1.0,
                 "purpose": "entry", "status": "closed", "plan_id": None,
                 "created_at": start, "updated_at": start}
                for sid in ids for n in range(orders_a_day)]
        rows += [{**rows[0], "session_id": ids[-1], "client_order_id": f"td-live-{n}",
                  "order_id": f"live-{n}", "status": "open", "purpose": "stop"}
                 for n in range(LIVE)]
        db.execute(insert(Order), rows)
        db.commit()
    return ids


def _instructions(url: str, lookup) -> int:
    """SQLite VM instructions the lookup runs (a progress handler called at each one)."""
    factory = session_factory(make_engine(url))
    with factory() as db:
        raw = db.connection().connection.driver_connection
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0
        raw.set_progress_handler(count, 1)
        lookup(db)
        raw.set_progress_handler(None, 1)
    return counted[0]


def test_live_order_lookups_do_not_grow_with_the_orders_a_run_finished(tmp_path) -> None:
    costs = {}
    for name, days in (("day", 1), ("year", 365)):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        ids = _run(url, days, orders_a_day=30)
        current = ids[-1]
        costs[name] = [_instructions(url, lambda db, sid=current: live_orders(db, sid)),
                       _instructions(url, lambda db, sid=current: any_live_order(
                           db.connection(), sid)),
                       _instructions(url, lambda db: live_order_of_plan(db, 1, "stop")),
                       _instructions(url, lambda db: exits_of_plan(db, 1))]
    # none of the 10,950 orders the year finished is read, nor any of its 365 sessions but
    # the live orders' own and the one asking
    assert costs["year"] == costs["day"], costs


def _widest_binding(url: str, earlier_days: int) -> int:
    """The most parameters any statement binds while the loop buys, books the fill and
    enforces the plan, on a replay run that already has ``earlier_days`` sessions: after
    its first step, whose reads of the run's traces run once a start."""
    upgrade(url)
    with session_factory(make_engine(url))() as db:
        db.add_all(Session(date=date(2000, 1, 1) + timedelta(days=day), kind="replay",
                           run_name="test", starting_balance=1000.0)
                   for day in range(earlier_days))
        db.commit()
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([Decision(), Decision(
        actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.05, reason="flat")])]))
    step(rt)  # holds
    widest = [0]

    def bound(_conn, _cursor, _statement, params, _context, executemany) -> None:
        for row in params if executemany else [params]:
            widest[0] = max(widest[0], len(row))
    listen(bound_engine(rt.db), "before_cursor_execute", bound)
    step(rt, 4)
    assert rt.book.quantity("BTC/USDT") > 0  # it bought, booked and holds
    return widest[0]


def test_a_step_binds_as_much_on_a_year_of_sessions_as_on_a_day(tmp_path) -> None:
    """The run's lookups (live orders, active plans, a fill's order) name the run, not each
    of its sessions: a year's 365 session ids bound at every step made each step slower."""
    day = _widest_binding(f"sqlite:///{tmp_path / 'day'}.db", 0)
    year = _widest_binding(f"sqlite:///{tmp_path / 'year'}.db", 364)
    assert year == day, (day, year)
