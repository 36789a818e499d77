"""The lookups a loop step makes read as much on a year of history as on a day: counted in
SQLite's virtual machine instructions (deterministic for the same rows), on a run with few
orders and on one with thousands of finished ones, each with the same live orders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Order, Session
from db.orders import any_live_order, live_order_of_plan, live_orders

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
        costs[name] = [_instructions(url, lambda db, ids=ids: live_orders(db, ids)),
                       _instructions(url, lambda db, ids=ids: any_live_order(
                           db.connection(), ids)),
                       _instructions(url, lambda db: live_order_of_plan(db, 1, "stop"))]
    # the year binds 365 session ids where the day binds one: a few instructions each,
    # and fewer in all than the 10,950 orders it finished (none of them is read)
    assert all(year <= day + 40 * 365
               for day, year in zip(costs["day"], costs["year"], strict=True)), costs
    assert all(year < 30 * 365 for year in costs["year"]), costs
