"""The live path end to end: the real loop, ccxt's real binance class, a binance account on
the wire (``tests.binance_wire``) and SQLite. What is checked is what a trader's money does:
what is sent, what the books hold, and whether every coin held is guarded by a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.loop import run_iteration
from bot.runtime import Runtime
from db.models import Order, TradePlan
from tests.binance_wire import BinanceWire, Fill, wire_runtime
from tests.ccxt_replay import fixtures_dir
from tests.loop_harness import ScriptedEngine

ETH = "ETH/USDT"


class Clock:
    def __init__(self) -> None:
        self.value = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value


@pytest.fixture(autouse=True)
def _fixtures() -> None:
    fixtures_dir()


def buy(size: float) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=ETH, size=size,
                                    reason="live path test")])


def step(rt: Runtime, clock: Clock, iterations: int = 1) -> None:
    for _ in range(iterations):
        run_iteration(rt)
        assert not rt.errors, rt.errors
        clock.value += timedelta(seconds=10)


def plans(rt: Runtime) -> list[TradePlan]:
    with rt.db() as db:
        return list(db.scalars(select(TradePlan).order_by(TradePlan.id)))


def orders(rt: Runtime) -> list[Order]:
    with rt.db() as db:
        return list(db.scalars(select(Order).order_by(Order.id)))


def test_an_entry_expired_after_a_partial_fill_shown_late_keeps_its_plan(sqlite_url) -> None:
    """binance answers a market buy the book filled only in part as EXPIRED with its
    executedQty; the trade shows in the history a moment later. The coins bought are held
    and must be guarded by the plan's stop, not left without one."""
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, fill=Fill(share=0.5), late=True)
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([buy(0.1)]))
    step(rt, clock)  # the buy goes out; binance fills 0.05 and expires the rest
    (entry,) = orders(rt)
    assert wire.orders[entry.order_id]["status"] == "EXPIRED"
    step(rt, clock)  # its trade is not shown yet
    wire.late = False
    step(rt, clock)  # now it is
    assert rt.book.quantity(ETH) == pytest.approx(0.05)
    (plan,) = plans(rt)
    assert plan.status == "open" and plan.filled_size == pytest.approx(0.05)
    assert plan.stop_price == pytest.approx(2000 * 0.98)
