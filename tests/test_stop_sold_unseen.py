"""A stop resting on the venue that sold while its fill is still unseen is not sold again.

Exchanges show an order's trades late, after the order itself is done. When the market
falls through a plan's stop resting on the venue (``STOPLOSS_ON_EXCHANGE``), the bot sees
the stop hit too and exits the plan: the resting stop is gone, having sold every coin the
plan held, and an exit sized from the books (which have not seen that fill) sells the same
coins again; on a shared account, another bot's. The real paper venue, store and loop over
crafted candles; the venue shows the stop's fill late.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crafted import flat_then
from tests.loop_harness import step
from tests.test_partial_exit import HeldBack
from tests.test_plans import SYMBOL, entry, fills, runtime, the_plan
from tests.test_resting_stop import journal, resting_on_venue

STOP = 99.0


def test_a_plan_whose_resting_stop_sold_unseen_sends_no_second_exit(
        sqlite_url: str, tmp_path: Path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 6 + [98.5] * 6)
    rt = runtime(sqlite_url, path, [entry(stop=STOP)], STOPLOSS_ON_EXCHANGE=True)
    step(rt, 3)  # the entry fills; the plan step rests its stop on the venue
    held = rt.book.quantity(SYMBOL)
    assert held == pytest.approx(1.0) and resting_on_venue(rt)
    venue = HeldBack(rt.venue)
    rt.venue = venue  # type: ignore[assignment]
    while not (sold := [t for t in venue.venue.fetch_my_trades(SYMBOL) if t["side"] == "sell"]):
        step(rt)
        venue.hidden = {str(t["id"]) for t in venue.venue.fetch_my_trades(SYMBOL)
                        if t["side"] == "sell"}
    assert [t["amount"] for t in sold] == [pytest.approx(held)]  # the stop sold it all
    step(rt, 2)  # the bot sees the stop hit while the stop's fill is still unseen
    assert not fills(rt, "SELL"), "the stop's fill is meant to be still unseen"
    assert [(o.amount, o.status) for o in journal(rt, "exit")] == [], \
        "an exit was sent for coins the stop had sold"
    venue.hidden = set()
    step(rt, 2)
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(held)]
    assert the_plan(rt).status == "closed"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
