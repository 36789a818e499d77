"""The live path end to end: the real loop, ccxt's real binance class, a binance account on
the wire (``tests.binance_wire``) and SQLite. What is checked is what a trader's money does:
what is sent, what the books hold, and whether every coin held is guarded by a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.loop import run_iteration
from bot.model.vocabulary import CommandKind
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


def close(plan_id: int) -> Decision:
    return Decision(actions=[Action(action=ActionType.CLOSE_PLAN, plan_id=plan_id,
                                    reason="take it off")])


def dust_left(clock: Clock, sqlite_url: str, *later: Decision) -> tuple[Runtime, BinanceWire]:
    """A plan whose exit left dust: 0.0512 ETH bought, its fee taken in ETH, holds 0.0511488;
    binance's ETH/USDT step of 0.0001 cuts the exit to 0.0511 and 0.0000488 ETH (some 0.1
    USDT) stays, under the market's minimum amount, 0.0001, and cost, 5 USDT."""
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, fill=Fill(fee_in_received=True))
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([buy(0.0512), close(1), *later]),
                      LLM_MIN_INTERVAL_SECONDS=0)
    step(rt, clock, 6)  # bought, closed, the exit's fill booked and the plan's grace over
    assert wire.balances["ETH"] == pytest.approx(0.0000488)
    assert rt.book.quantity(ETH) == pytest.approx(0.0000488)
    return rt, wire


def test_an_exit_below_the_exchange_minimum_closes_its_plan_once(sqlite_url) -> None:
    """No order can sell dust: the stop's exit is refused by the exchange's minimum (ours,
    before any request), and the plan is closed saying so, not sent again every iteration
    while it holds the symbol's one plan."""
    clock = Clock()
    rt, wire = dust_left(clock, sqlite_url)
    wire.prices["ETHUSDT"] = 1900.0  # through the plan's stop at 1960
    sent = len(wire.sent)
    step(rt, clock, 4)
    refused = [o for o in orders(rt) if o.status == "rejected"]
    assert len(refused) == 1 and "minimum" in (refused[0].error or "")
    (plan,) = plans(rt)
    assert plan.status == "closed"
    assert "below the exchange's minimum" in (plan.exit_reason or "")
    assert not [s for s in wire.sent[sent:] if s[:2] == ("POST", "order")], "none went out"


def test_close_all_leaves_dust_and_is_done(sqlite_url) -> None:
    """A close-all is never refused: the dust no order can sell is named in its result,
    and the command is done, not failed."""
    from db.commands import enqueue_command
    from db.models import Command

    clock = Clock()
    rt, _ = dust_left(clock, sqlite_url)
    with rt.db() as db:
        enqueue_command(db, CommandKind.CLOSE_ALL, bot=rt.settings.bot_name)
    step(rt, clock)
    with rt.db() as db:
        (command,) = db.scalars(select(Command))
    assert command.status == "done", command.result
    assert "0.0000488" in (command.result or "") and "minimum" in (command.result or "")
    assert all(p.status == "closed" for p in plans(rt))


def test_a_buy_whose_answer_was_lost_is_not_bought_again(sqlite_url) -> None:
    """binance refuses a client order id again only while its order is open: a market buy
    it filled and whose answer timed out is taken a second time by a retry with the same
    id. The retry asks for the order by its client id first, and buys once."""
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, answers_lost=1)
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([buy(0.1)]))
    step(rt, clock, 2)  # the buy goes out (its answer lost), and its fill is booked
    assert len(wire.orders) == 1, "the buy went out twice"
    assert wire.balances["ETH"] == pytest.approx(0.1)
    (entry,) = orders(rt)
    assert (entry.order_id, entry.status) == (next(iter(wire.orders)), "closed")
    (plan,) = plans(rt)
    assert plan.status == "open" and plan.filled_size == pytest.approx(0.1)


def test_a_stop_sells_what_the_account_holds_when_it_holds_less_than_the_books(
        sqlite_url) -> None:
    """The books hold our fills; the account may hold less (coins moved out by hand, a fee
    its trades do not show). binance refuses a sell of more than is free, so an exit sized
    from the books alone is refused at every iteration and the stop never sells: it sells
    what the account holds."""
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0})
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([buy(0.1)]))
    step(rt, clock, 2)  # bought and booked
    wire.balances["ETH"] = 0.07  # 0.03 ETH moved out of the account
    wire.prices["ETHUSDT"] = 1900.0  # through the stop at 1960
    step(rt, clock, 3)
    sells = [o for o in wire.orders.values() if o["side"] == "SELL"]
    assert [float(o["executedQty"]) for o in sells] == [pytest.approx(0.07)]
    assert wire.balances["ETH"] == pytest.approx(0.0)
    assert not [o for o in orders(rt) if o.status == "rejected"]


def test_an_entry_cancelled_after_a_partial_fill_shown_late_keeps_its_plan(sqlite_url) -> None:
    """A limit entry fills in part, then the price passes its stop and the bot cancels the
    rest; binance's cancel answer says what it filled, its trade shows a moment later. The
    plan waits for that fill and exits it, rather than closing as never filled and leaving
    the coins without a stop."""
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, late=True)
    limit = Decision(actions=[Action(action=ActionType.BUY, symbol=ETH, size=0.1,
                                     order_type="limit", price=1990.0, reason="a dip")])
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([limit]))
    step(rt, clock)  # the limit rests on the book
    (entry,) = orders(rt)
    wire.fill_resting(entry.order_id or "", 0.04)  # its trade is not shown yet
    wire.prices["ETHUSDT"] = 1900.0  # under the plan's stop, 1990 x 0.98
    step(rt, clock)  # the stop passed before the entry filled: the rest is cancelled
    assert wire.orders[entry.order_id or ""]["status"] == "CANCELED"
    wire.late = False
    step(rt, clock, 3)  # the fill shows, is booked, and the plan's stop sells it
    sells = [o for o in wire.orders.values() if o["side"] == "SELL"]
    assert [float(o["executedQty"]) for o in sells] == [pytest.approx(0.04)]
    assert rt.book.quantity(ETH) == pytest.approx(0.0)
    (plan,) = plans(rt)
    assert plan.status == "closed"
