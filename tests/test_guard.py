"""Stops while the database is down (``bot.guard``): a paper bot with an open plan, the
database cut by a TCP proxy, the market moved through the stop during the outage.

The outage's sleep is the test's: it moves the market, watches the venue, and restores the
database, so nothing waits for real and nothing depends on the wall clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.audit import audit
from bot.loop import run_forever
from db.models import Order, Trade, TradePlan
from tests.crafted import flat_then
from tests.loop_harness import step
from tests.tcp_proxy import TcpProxy
from tests.test_outage import fast_loop, on_statement, proxy  # noqa: F401 (fixtures)
from tests.test_plans import SYMBOL, entry, runtime

STOP = 99.0


def test_a_stop_hit_while_the_database_is_down_exits_at_the_venue_and_is_booked_once(
        postgres_url: str, proxy: TcpProxy, tmp_path: Path, fast_loop: None) -> None:  # noqa: F811
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 6 + [98.5] * 6)
    rt = runtime(proxy.url_for(postgres_url), path, [entry(stop=STOP)],
                 LOOP_INTERVAL_SECONDS=0.001)
    step(rt, 3)  # the entry fills and the plan step reads the open plan
    assert rt.book.quantity(SYMBOL) > 0 and rt.guard.stops, "no open plan to guard"

    cut = True
    during_outage: list[tuple[float, bool]] = []  # (exit fill price, database still cut)
    sleeps: list[float] = []

    def outage_sleep(seconds: float) -> None:
        nonlocal cut
        sleeps.append(seconds)
        if len(sleeps) == 1:  # the market falls through the stop while the database is down
            while rt.venue.fetch_ticker(SYMBOL)["last"] > STOP:
                assert rt.venue.feed.advance()  # type: ignore[attr-defined]
            return
        sold = [f for f in rt.venue.fills if f.side == "sell"]  # type: ignore[attr-defined]
        if cut and (sold or len(sleeps) > 40):
            during_outage.extend((f.price, cut) for f in sold)
            cut = False
            proxy.restore()

    rt.outage.sleep = outage_sleep
    on_statement(rt, "FROM commands", 1, proxy.cut)  # cut during the next iteration
    run_forever(rt, max_iterations=4)

    assert proxy.refused > 0 and rt.outage.survived >= 1
    assert len(during_outage) == 1, "the exit did not reach the venue during the outage"
    price, still_cut = during_outage[0]
    assert still_cut and price <= STOP  # at the stop or worse, never at a later price
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
        exits = list(db.scalars(select(Order).where(Order.purpose == "exit")))
        sells = list(db.scalars(select(Trade).where(Trade.action == "SELL")))
        failed = [c for c in audit(db) if not c.ok]
    assert len(exits) == 1 and exits[0].client_order_id.startswith(rt.prefix)
    assert exits[0].plan_id == plan.id and plan.exit_client_order_id == exits[0].client_order_id
    assert [t.client_order_id for t in sells] == [exits[0].client_order_id]  # booked once
    assert sells[0].price == pytest.approx(price)
    assert plan.status == "closed" and plan.exit_reason == f"stop hit at {STOP:g}"
    venue_sells = [o for o in rt.venue.orders.values() if o.side == "sell"]  # type: ignore[attr-defined]
    assert len(venue_sells) == 1, "the plan was exited twice"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
    assert not failed, failed
