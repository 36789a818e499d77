"""An exit that fills in parts: the real paper venue, store and loop over crafted candles.

A limit exit rests and fills across candles (``volume_share`` of each candle's volume), as
a real exchange's exit may fill in several trades that the fill sync sees one at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.execution import next_client_order_id, place_order
from bot.model.vocabulary import OrderPurpose, OrderType, PlanStatus, Side
from bot.runtime import Runtime
from bot.steps.commands import obey_commands
from db.commands import enqueue_command
from db.models import Order
from db.plans import revise_plan
from tests.crafted import WARMUP, flat_then
from tests.loop_harness import step
from tests.test_plans import SYMBOL, entry, fills, runtime, the_plan

LIMIT = 100.5


def sells(rt: Runtime, plan_id: int) -> list[tuple[str, str]]:
    """The plan's sell orders in the journal: client id and type."""
    with rt.db() as db:
        return [(o.client_order_id, o.type) for o in db.scalars(
            select(Order).where(Order.plan_id == plan_id, Order.side == Side.SELL)
            .order_by(Order.id))]


def exiting_in_parts(url: str, tmp_path: Path, wicks: list[int]) -> tuple[Runtime, int, str]:
    """A plan of 2 past its age, exiting through a limit sell of 2 that fills one unit on
    each candle of ``wicks`` (volume 10 at a share of 0.1); the runtime, plan id, exit id."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12, volume=10.0,
                     wicks={WARMUP + i: (101.0, 99.98) for i in wicks})
    rt = runtime(url, path, [entry(size=2.0)], PLAN_MAX_AGE_MINUTES=20)
    step(rt, 2)
    plan = the_plan(rt)
    assert plan.filled_size == pytest.approx(2.0)
    with rt.db() as db:  # the plan's exit as a limit, marked as exit_plan marks one
        plan = db.merge(plan)
        cid = next_client_order_id(rt, db)
        revise_plan(db, plan, "exit: take profit", rt.now(), status=PlanStatus.CLOSING,
                    exit_reason="take profit")
        plan.exit_client_order_id = cid
        assert place_order(rt, db, symbol=SYMBOL, side=Side.SELL, amount=2.0,
                           purpose=OrderPurpose.EXIT, reason="take profit", plan_id=plan.id,
                           order_type=OrderType.LIMIT, price=LIMIT, client_order_id=cid).ok
    return rt, plan.id, cid


def test_a_partly_filled_exit_still_working_is_not_doubled(sqlite_url, tmp_path: Path) -> None:
    """The exit's first part is booked while its rest still rests on the venue: the plan
    keeps exiting through that order, and no second exit is sent for the rest, though the
    plan is past its age (which exits an open plan at once)."""
    rt, plan_id, cid = exiting_in_parts(sqlite_url, tmp_path, wicks=[6, 9])
    step(rt, 6)  # the first wick fills half of the exit; its rest rests
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(1.0)]
    assert sells(rt, plan_id) == [(cid, OrderType.LIMIT)], "a second exit was sent"
    plan = the_plan(rt)
    assert plan.status == PlanStatus.CLOSING and plan.exit_client_order_id == cid
    assert plan.filled_size == pytest.approx(1.0)
    step(rt, 4)  # the second wick fills the rest
    assert sells(rt, plan_id) == [(cid, OrderType.LIMIT)], "a second exit was sent"
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(1.0), pytest.approx(1.0)]
    plan = the_plan(rt)
    assert plan.status == PlanStatus.CLOSED and plan.exit_reason == "take profit"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


def test_a_partly_filled_exit_that_ends_re_arms_the_plan_for_the_rest(
        sqlite_url, tmp_path: Path) -> None:
    """Once the partly filled exit is off the venue, the plan is re-armed and exits the rest."""
    rt, plan_id, cid = exiting_in_parts(sqlite_url, tmp_path, wicks=[6])
    step(rt, 6)
    assert the_plan(rt).status == PlanStatus.CLOSING
    (order,) = [o for o in rt.venue.fetch_open_orders(SYMBOL) if o["clientOrderId"] == cid]
    rt.venue.cancel_order(order["id"], SYMBOL)  # it expires on the venue with its rest
    step(rt, 3)
    (first, second) = sells(rt, plan_id)
    assert first == (cid, OrderType.LIMIT) and second[1] == OrderType.MARKET
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(1.0), pytest.approx(1.0)]
    plan = the_plan(rt)
    assert plan.status == PlanStatus.CLOSED and plan.exit_reason.startswith("plan older than")
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


class HeldBack:
    """The real paper venue, with the fills named in ``hidden`` left out of its trade list:
    an exchange showing an order's trades late, after the order itself is done."""

    def __init__(self, venue) -> None:
        self.venue, self.hidden = venue, set[str]()

    def __getattr__(self, name: str):
        return getattr(self.venue, name)

    def fetch_my_trades(self, symbol: str, since: int | None = None, limit: int | None = None):
        return [t for t in self.venue.fetch_my_trades(symbol, since, limit)
                if str(t["id"]) not in self.hidden]


def test_an_exit_done_with_fills_still_unseen_is_not_doubled(sqlite_url, tmp_path: Path) -> None:
    """The exit is done on the venue (all of it sold) but the fill sync has seen only its
    first part: the plan waits for the rest rather than exiting what was already sold."""
    rt, plan_id, cid = exiting_in_parts(sqlite_url, tmp_path, wicks=[6, 7])
    venue = HeldBack(rt.venue)
    rt.venue = venue  # type: ignore[assignment]
    while not [t for t in venue.venue.fetch_my_trades(SYMBOL) if t["side"] == "sell"]:
        step(rt)
    venue.hidden = {str(t["id"]) for t in venue.venue.fetch_my_trades(SYMBOL)
                    if t["side"] == "sell"}  # the first part, shown late
    step(rt)  # the second part fills the exit
    (first, second) = [t for t in venue.venue.fetch_my_trades(SYMBOL) if t["side"] == "sell"]
    venue.hidden = {str(second["id"])}  # the first part shows; the second is still unseen
    step(rt)
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(1.0)]
    assert sells(rt, plan_id) == [(cid, OrderType.LIMIT)], "a second exit was sent"
    venue.hidden = set()
    step(rt)
    assert sells(rt, plan_id) == [(cid, OrderType.LIMIT)], "a second exit was sent"
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(1.0), pytest.approx(1.0)]
    plan = the_plan(rt)
    assert plan.status == PlanStatus.CLOSED and plan.exit_reason == "take profit"


def test_a_plan_exiting_while_a_part_of_it_is_still_being_sold_sells_only_the_rest(
        sqlite_url, tmp_path: Path) -> None:
    """An engine's sell of part of a plan (``_sell_part``) may still be working when the plan
    itself exits (here: past its age). The exit takes the part's order off the venue and
    sells what the plan still holds: never the part a second time, and never refused for
    coins the part's order holds."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12, volume=10.0)
    rt = runtime(sqlite_url, path, [entry(size=2.0)], PLAN_MAX_AGE_MINUTES=20)
    step(rt, 2)
    plan = the_plan(rt)
    assert plan.status == PlanStatus.OPEN and plan.filled_size == pytest.approx(2.0)
    with rt.db() as db:  # the part's sell rests on the venue, as a slow market sell would
        part = place_order(rt, db, symbol=SYMBOL, side=Side.SELL, amount=1.0,
                           purpose=OrderPurpose.EXIT, reason="engine sell", plan_id=plan.id,
                           order_type=OrderType.LIMIT, price=LIMIT)
        assert part.ok
    step(rt, 6)  # the plan ages out
    plan = the_plan(rt)
    assert plan.status == PlanStatus.CLOSED, f"the exit did not go through: {plan.status}"
    assert not rt.venue.fetch_open_orders(SYMBOL), "the part's sell still rests"
    assert sum(t.quantity for t in fills(rt, "SELL")) == pytest.approx(2.0)
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


def test_a_plan_exiting_does_not_sell_again_what_its_part_sell_sold_unseen(
        sqlite_url, tmp_path: Path) -> None:
    """The part's sell has sold some, which the fill sync has not seen yet, when the plan
    exits: the exit sells what is left after it, and the late fill closes the plan."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 14, volume=10.0,
                     wicks={WARMUP + 3: (101.0, 99.98)})
    rt = runtime(sqlite_url, path, [entry(size=2.0)], PLAN_MAX_AGE_MINUTES=40)
    venue = HeldBack(rt.venue)
    rt.venue = venue  # type: ignore[assignment]
    step(rt, 2)
    plan = the_plan(rt)
    assert plan.status == PlanStatus.OPEN and plan.filled_size == pytest.approx(2.0)
    with rt.db() as db:
        assert place_order(rt, db, symbol=SYMBOL, side=Side.SELL, amount=1.5,
                           purpose=OrderPurpose.EXIT, reason="engine sell", plan_id=plan.id,
                           order_type=OrderType.LIMIT, price=LIMIT).ok
    while not (sold := [t for t in venue.venue.fetch_my_trades(SYMBOL) if t["side"] == "sell"]):
        venue.hidden = set()
        step(rt)
        venue.hidden = {str(t["id"]) for t in venue.venue.fetch_my_trades(SYMBOL)
                        if t["side"] == "sell"}
    assert [t["amount"] for t in sold] == [pytest.approx(1.0)]
    assert not fills(rt, "SELL"), "the part's fill is meant to be still unseen"
    for _ in range(10):  # the plan ages out and exits
        step(rt)
        if the_plan(rt).status != PlanStatus.OPEN:
            break
    with rt.db() as db:
        sent = [(o.amount, o.type) for o in db.scalars(
            select(Order).where(Order.plan_id == plan.id, Order.side == Side.SELL)
            .order_by(Order.id))]
    assert sent == [(1.5, OrderType.LIMIT), (pytest.approx(1.0), OrderType.MARKET)], \
        "the exit is to sell what the part's sell left: 2 held, 1 sold unseen"
    venue.hidden = set()
    step(rt, 2)
    assert sorted(t.quantity for t in fills(rt, "SELL")) == [pytest.approx(1.0)] * 2
    assert the_plan(rt).status == PlanStatus.CLOSED
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
    assert not rt.venue.fetch_open_orders(SYMBOL)


def _with_part_sold_unseen(url: str, tmp_path: Path, **settings) -> tuple[Runtime, HeldBack,
                                                                           int]:
    """A plan of 2 whose part's sell of 1.5 (a resting limit) has sold 1 that the fill
    sync has not seen yet; the runtime, its venue and the plan id."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 14, volume=10.0,
                     wicks={WARMUP + 3: (101.0, 99.98)})
    rt = runtime(url, path, [entry(size=2.0)], **settings)
    venue = HeldBack(rt.venue)
    rt.venue = venue  # type: ignore[assignment]
    step(rt, 2)
    plan = the_plan(rt)
    with rt.db() as db:
        assert place_order(rt, db, symbol=SYMBOL, side=Side.SELL, amount=1.5,
                           purpose=OrderPurpose.EXIT, reason="engine sell", plan_id=plan.id,
                           order_type=OrderType.LIMIT, price=LIMIT).ok
    while not [t for t in venue.venue.fetch_my_trades(SYMBOL) if t["side"] == "sell"]:
        step(rt)
        venue.hidden = {str(t["id"]) for t in venue.venue.fetch_my_trades(SYMBOL)
                        if t["side"] == "sell"}
    assert not fills(rt, "SELL")
    return rt, venue, plan.id


def _sent_after_the_part(rt: Runtime, plan_id: int) -> list[float]:
    with rt.db() as db:
        return [o.amount for o in db.scalars(
            select(Order).where(Order.side == Side.SELL).order_by(Order.id))][1:]


def test_a_close_all_does_not_sell_again_what_a_cancelled_part_sell_sold_unseen(
        sqlite_url, tmp_path: Path) -> None:
    """Close-all cancels every order first, the part's sell too: the plan's exit still
    counts what that sell sold before it was cancelled."""
    rt, venue, plan_id = _with_part_sold_unseen(sqlite_url, tmp_path)
    with rt.db() as db:
        enqueue_command(db, "close-all")
    obey_commands(rt)
    assert _sent_after_the_part(rt, plan_id) == [pytest.approx(1.0)], \
        "2 held, 1 sold by the part's sell unseen: the rest is 1"
    venue.hidden = set()
    step(rt, 2)
    assert sorted(t.quantity for t in fills(rt, "SELL")) == [pytest.approx(1.0)] * 2
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
    assert the_plan(rt).status == PlanStatus.CLOSED


def test_a_part_sell_whose_venue_id_is_unknown_is_found_by_its_client_id(
        sqlite_url, tmp_path: Path) -> None:
    """A sell answered as a duplicate on its retry is journaled open with no venue id until
    the next resync; a close-all in that window finds it among the venue's open orders by
    its client id, takes it off, and the plan's exit sells what it left."""
    rt, venue, plan_id = _with_part_sold_unseen(sqlite_url, tmp_path)
    with rt.db() as db:
        part = db.scalars(select(Order).where(Order.side == Side.SELL)).one()
        part.order_id = None
        enqueue_command(db, "close-all")
        db.commit()
    obey_commands(rt)
    assert _sent_after_the_part(rt, plan_id) == [pytest.approx(1.0)]
    assert not venue.venue.fetch_open_orders(SYMBOL), "the part's sell still rests"
    venue.hidden = set()
    step(rt, 2)
    assert sorted(t.quantity for t in fills(rt, "SELL")) == [pytest.approx(1.0)] * 2
    assert the_plan(rt).status == PlanStatus.CLOSED
