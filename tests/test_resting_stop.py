"""Stops resting on the venue (``STOPLOSS_ON_EXCHANGE``, ``bot.resting_stop``): the real
paper venue, store and loop over crafted candles; the ccxt capability check on real ccxt
exchange classes, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ccxt
import pytest
from sqlalchemy import select

from bot.audit import audit
from bot.config import ConfigError, load_settings
from bot.engine.schema import Action, ActionType, Decision
from bot.model.paper import FillState
from bot.runtime import Runtime
from bot.venue.ccxt_venue import CcxtVenue, supports_stop_orders
from bot.venue.feeds import ReplayFeed
from bot.venue.paper import PaperVenue
from db.engine import make_engine, session_factory
from db.models import Order, Trade, TradePlan
from db.paper_store import PaperStore
from tests.crafted import flat_then
from tests.loop_harness import step
from tests.test_plans import SYMBOL, entry, runtime

STOP = 99.0
ON = {"STOPLOSS_ON_EXCHANGE": True}
LIVE = {"TRADING_MODE": "LIVE", "LIVE_TRADING_CONFIRMED": True}  # an exchange's real money


def resting_on_venue(rt: Runtime) -> list[dict[str, Any]]:
    return [o for o in rt.venue.fetch_open_orders(SYMBOL)
            if o["type"] == "stop" and rt.owns(o["clientOrderId"])]


def journal(rt: Runtime, purpose: str) -> list[Order]:
    with rt.db() as db:
        return list(db.scalars(select(Order).where(Order.purpose == purpose).order_by(Order.id)))


def the_plan(rt: Runtime) -> TradePlan:
    with rt.db() as db:
        return db.scalars(select(TradePlan)).one()


def venue_alone_through_the_stop(url: str, path: Path) -> tuple[PaperVenue, FillState]:
    """No bot runs: the venue alone steps the run's account as the market falls through the
    stop; the venue, and the stop's fill."""
    venue = PaperVenue(ReplayFeed([path]), PaperStore(session_factory(make_engine(url)), "test"))
    while venue.fetch_ticker(SYMBOL)["last"] > STOP:
        assert venue.advance()
    (filled,) = [f for f in venue.fills if f.side == "sell"]
    return venue, filled


def test_a_resting_stop_fills_while_no_bot_runs_and_the_restarted_bot_books_it_once(
        sqlite_url: str, tmp_path: Path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 6 + [98.5] * 4)
    rt = runtime(sqlite_url, path, [entry(stop=STOP)], **ON)
    step(rt, 3)  # the entry fills; the next plan step places its stop on the venue
    held = rt.book.quantity(SYMBOL)
    (resting,) = resting_on_venue(rt)
    assert resting["stopPrice"] == STOP and resting["amount"] == pytest.approx(held)
    assert [o.client_order_id for o in journal(rt, "stop")] == [resting["clientOrderId"]]

    rt = runtime(sqlite_url, path, [], **ON)  # the bot died; a restart finds the stop resting
    step(rt)
    assert [o["id"] for o in resting_on_venue(rt)] == [resting["id"]], "the stop was doubled"
    assert len(journal(rt, "stop")) == 1
    del rt  # and dies again

    venue, filled = venue_alone_through_the_stop(sqlite_url, path)
    assert filled.client_order_id == resting["clientOrderId"] and filled.price <= STOP

    rt = runtime(sqlite_url, path, [], **ON)
    step(rt, 2)
    plan = the_plan(rt)
    with rt.db() as db:
        sells = list(db.scalars(select(Trade).where(Trade.action == "SELL")))
        failed = [c for c in audit(db) if not c.ok]
    assert [(t.trade_id, t.client_order_id) for t in sells] == [
        (filled.id, resting["clientOrderId"])]  # booked once
    assert plan.status == "closed" and plan.exit_reason == f"stop hit at {STOP:g}"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
    assert not resting_on_venue(rt) and not journal(rt, "exit")  # no second exit
    assert not failed, failed


def test_a_moved_stop_replaces_the_resting_one_and_a_target_exit_cancels_it_first(
        sqlite_url: str, tmp_path: Path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 8, wicks={205: (106.0, 99.9)})
    update = Decision(actions=[Action(action=ActionType.UPDATE_PLAN, plan_id=1, stop=97.5,
                                      target=105.0, reason="tighter target")])
    rt = runtime(sqlite_url, path, [entry(stop=STOP), Decision(), Decision(), update], **ON)
    step(rt, 3)
    (first,) = resting_on_venue(rt)
    step(rt, 2)  # the update, then the plan step that replaces the stop
    (second,) = resting_on_venue(rt)
    assert second["stopPrice"] == 97.5 and second["id"] != first["id"]
    assert [o.status for o in journal(rt, "stop")] == ["canceled", "open"]
    step(rt, 2)  # the wick reaches the target: the stop comes off, then the exit sells
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "target hit at 105"
    assert not resting_on_venue(rt)
    assert [o.status for o in journal(rt, "stop")] == ["canceled", "canceled"]
    with rt.db() as db:
        assert len(list(db.scalars(select(Trade).where(Trade.action == "SELL")))) == 1
        assert not [c for c in audit(db) if not c.ok]


def test_the_stop_order_capability_comes_from_ccxt_and_an_unsupported_one_is_refused() -> None:
    assert supports_stop_orders(ccxt.binance()) and supports_stop_orders(ccxt.kraken())
    assert not supports_stop_orders(ccxt.bitstamp())
    with pytest.raises(ConfigError, match="invalid setting STOPLOSS_ON_EXCHANGE: bitstamp"):
        CcxtVenue.from_settings(load_settings(EXCHANGE="bitstamp", **ON, **LIVE))
    assert CcxtVenue.from_settings(load_settings(EXCHANGE="binance", **ON, **LIVE)).supports_stop_orders
    assert load_settings().stoploss_on_exchange is False  # off unless asked for



def test_a_stop_goes_to_a_ccxt_exchange_as_its_stop_loss_order() -> None:
    """Recorded kraken answer, real ccxt request building: the stop is on the wire."""
    from tests.test_ccxt_venue import CLIENT_ID, case, replay_fetch, venue_for

    recorded = case("kraken", "createOrder", "create order")
    venue, exchange = venue_for("kraken")
    sent = replay_fetch(exchange, recorded["httpResponse"])
    venue.create_order("LTC/USDT", "stop", "sell", 0.1, 60.0, {"clientOrderId": CLIENT_ID})
    params = sent[0].params()
    assert params["ordertype"] == "stop-loss" and params["price"] == "60"
    assert params["cl_ord_id"] == CLIENT_ID and params["type"] == "sell"


def test_a_stop_filled_days_before_the_restart_is_booked_and_not_placed_again(
        sqlite_url: str, tmp_path: Path) -> None:
    """The bot is down for two days, longer than TRADE_SYNC_CUTOFF_MINUTES (one day), while
    its resting stop fills on the venue early in the outage. The restarted bot books that
    fill (its own order, in its journal) and closes the plan; it does not rest a second stop
    for coins the venue sold two days ago."""
    days = 2 * 288
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 6 + [98.5] * (4 + days))
    rt = runtime(sqlite_url, path, [entry(stop=STOP)], **ON)
    step(rt, 3)
    (resting,) = resting_on_venue(rt)
    del rt  # the bot dies

    venue, filled = venue_alone_through_the_stop(sqlite_url, path)
    for _ in range(days):  # the venue goes on for two days; no bot looks
        assert venue.advance()
    assert venue.feed.now_ms() - filled.timestamp_ms > 24 * 3_600_000

    rt = runtime(sqlite_url, path, [], **ON)
    step(rt, 2)
    plan = the_plan(rt)
    with rt.db() as db:
        sells = list(db.scalars(select(Trade).where(Trade.action == "SELL")))
    assert [t.trade_id for t in sells] == [filled.id]
    assert plan.status == "closed" and plan.exit_reason == f"stop hit at {STOP:g}"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
    assert not resting_on_venue(rt)
    assert [o.client_order_id for o in journal(rt, "stop")] == [resting["clientOrderId"]]


class StopFillsFirst(PaperVenue):
    """The paper exchange, where a resting stop fills at its price just before a cancel of
    it arrives (while ``racing``): the cancel finds it gone, as an exchange's would."""

    racing = False

    def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        order = self.orders.get(id)
        if self.racing and order is not None and order.type == "stop" and order.status == "open":
            fill = self._fill(order, order.stop_price or 0.0, order.remaining, "taker")
            self._refresh_used()
            self._persist([order], [fill])
        return super().cancel_order(id, symbol)


@pytest.mark.parametrize("late_calls", [0, 2], ids=["fill-shown-at-once", "fill-shown-late"])
def test_a_stop_that_fills_as_it_is_replaced_is_not_placed_again(
        sqlite_url: str, tmp_path: Path, late_calls: int) -> None:
    """The plan's stop moves, and its resting stop fills just before the bot's cancel of it
    arrives: the cancel answers "not found". The coins are sold; the bot must not rest the
    moved stop for them (on an account shared with another bot it would sell that bot's
    coins), also while the exchange shows the fill a loop or two later (within three loop
    intervals: one loop is a candle here), and the fill sync closes the plan with the
    stop's fill."""
    from bot.venue.faults import FaultRates, FaultyVenue
    from tests.loop_harness import ScriptedEngine, make_runtime
    from tests.test_plans import LOOSE

    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 16)
    update = Decision(actions=[Action(action=ActionType.UPDATE_PLAN, plan_id=1, stop=97.5,
                                      target=110.0, reason="wider stop")])
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([entry(stop=STOP)]),
                      venue_class=StopFillsFirst, LOOP_INTERVAL_SECONDS=300, **{**LOOSE, **ON})
    exchange = rt.venue
    assert isinstance(exchange, StopFillsFirst)
    if late_calls:
        rt.venue = FaultyVenue(exchange, FaultRates(late_fill=1.0, late_calls=late_calls))
    for _ in range(8):
        step(rt)
        if resting_on_venue(rt):
            break
    (first,) = resting_on_venue(rt)
    exchange.racing = True
    assert isinstance(rt.engine, ScriptedEngine)
    rt.engine.decisions.append(update)
    step(rt, 3 + late_calls)  # the update; the raced replacement; the fill booked
    assert [o.client_order_id for o in journal(rt, "stop")] == [first["clientOrderId"]]
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == f"stop hit at {STOP:g}"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
    assert not resting_on_venue(rt)
