"""Trade plans on the paper venue: stops, targets, trailing, versions, expiry, sizing.

Crafted candles (written to tmp_path) pin each scenario to a known candle; the venue,
store, loop and fill model are all the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.execution import place_order
from bot.runtime import Runtime
from db.models import Order, Trade, TradePlan, TradePlanVersion
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step

SYMBOL = "TST/USDT"
LOOSE = {"MAX_SPREAD_PCT": 5, "MAX_SLIPPAGE_PCT": 5, "TRAIL_BREAKEVEN_PCT": 0}


def entry(size: float = 1.0, stop: float = 99.0, target: float = 110.0, **extra) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=SYMBOL, size=size, stop=stop,
                                    target=target, reason="plan test", **extra)])


def runtime(url: str, path: Path, decisions: list[Decision], **settings) -> Runtime:
    return make_runtime(url, [path], ScriptedEngine(decisions), **{**LOOSE, **settings})


def the_plan(rt: Runtime) -> TradePlan:
    with rt.db() as db:
        return db.scalars(select(TradePlan)).one()


def fills(rt: Runtime, side: str) -> list[Trade]:
    with rt.db() as db:
        return list(db.scalars(select(Trade).where(Trade.action == side).order_by(Trade.id)))


def versions(rt: Runtime, plan_id: int) -> list[TradePlanVersion]:
    with rt.db() as db:
        return list(db.scalars(select(TradePlanVersion).where(TradePlanVersion.plan_id == plan_id)
                               .order_by(TradePlanVersion.version)))


def test_a_stop_hit_sells_what_was_bought(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 100, 100, 98.5, 98.5, 98.5])
    rt = runtime(sqlite_url, path, [entry()])
    step(rt, 6)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason.startswith("stop hit at 99")
    (bought,), (sold,) = fills(rt, "BUY"), fills(rt, "SELL")
    assert sold.quantity == pytest.approx(bought.quantity) and sold.realized_pnl < 0
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


def test_a_target_touched_only_by_a_wick_is_hit(sqlite_url, tmp_path) -> None:
    """The close never reaches the target; the candle's high does, and that is enough."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 100, 100, 100, 100],
                     wicks={202: (106.0, 99.9)})
    rt = runtime(sqlite_url, path, [entry(target=105.0)])
    step(rt, 5)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "target hit at 105"
    assert fills(rt, "SELL")[0].quantity == pytest.approx(fills(rt, "BUY")[0].quantity)


def test_trailing_moves_the_stop_to_breakeven_and_it_fires_there(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 101.5, 101.5, 99.9, 99.9, 99.9])
    rt = runtime(sqlite_url, path, [entry(stop=97.0)], TRAIL_BREAKEVEN_PCT=1.0)
    step(rt, 6)
    plan = the_plan(rt)
    assert plan.trail_armed and plan.stop_price == pytest.approx(plan.entry_price)
    assert plan.status == "closed" and plan.exit_reason == f"stop hit at {plan.entry_price:g}"
    changes = [v.change for v in versions(rt, plan.id)]
    assert any(c.startswith("trailed stop to breakeven") for c in changes)
    assert [v.stop_price for v in versions(rt, plan.id)][0] == pytest.approx(97.0)


def test_update_plan_writes_a_new_version_and_keeps_the_old(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100] * 4)
    update = Decision(actions=[Action(action=ActionType.UPDATE_PLAN, plan_id=1, stop=97.5,
                                      target=112.0, reason="widen")])
    rt = runtime(sqlite_url, path, [entry(), update])
    step(rt, 3)
    plan = the_plan(rt)
    assert (plan.stop_price, plan.target_price) == (97.5, 112.0)
    kept = versions(rt, plan.id)
    assert [v.version for v in kept] == list(range(1, plan.version + 1))
    assert kept[0].stop_price == 99.0 and kept[0].target_price == 110.0
    assert kept[-1].stop_price == 97.5 and kept[-1].change.startswith("updated: widen")


@pytest.mark.slow
def test_a_partial_exit_re_arms_the_plan_for_the_rest(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 100, 100, 100, 98.5, 98.5, 98.5])
    rt = runtime(sqlite_url, path, [entry(size=2.0)])
    step(rt, 2)
    plan = the_plan(rt)
    with rt.db() as db:  # an exit that fills for a quarter of the plan
        assert place_order(rt, db, symbol=SYMBOL, side="SELL", amount=0.5, purpose="exit",
                           reason="partial", plan_id=plan.id).ok
    step(rt)
    plan = the_plan(rt)
    assert plan.status == "open" and plan.filled_size == pytest.approx(1.5)
    assert plan.size == pytest.approx(1.5) and plan.stop_price == 99.0
    assert versions(rt, plan.id)[-1].change == "partial exit; re-armed for the rest"
    step(rt, 4)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason.startswith("stop hit")
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(0.5), pytest.approx(1.5)]


def test_a_plan_older_than_its_max_age_is_closed(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100] * 9)
    rt = runtime(sqlite_url, path, [entry()], PLAN_MAX_AGE_MINUTES=20)
    step(rt, 8)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "plan older than 20 min"
    assert fills(rt, "SELL")[0].quantity == pytest.approx(1.0)


def test_an_entry_that_never_fills_is_cancelled_not_exited(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100] * 9)
    limit = entry(order_type="limit", price=90.0, stop=88.0, target=120.0)  # 10% below
    rt = runtime(sqlite_url, path, [limit], PLAN_MAX_AGE_MINUTES=20)
    step(rt, 8)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "entry expired"
    with rt.db() as db:
        orders = list(db.scalars(select(Order)))
        assert db.scalars(select(Trade)).first() is None  # no trade row without a fill
    assert [(o.purpose, o.status) for o in orders] == [("entry", "canceled")]


def test_exits_are_sized_from_what_the_entry_really_filled(sqlite_url, tmp_path) -> None:
    """A limit entry fills a part per candle; the stop sells those parts, not the order size."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 100, 98.5, 98.5, 98.5, 98.5])
    limit = entry(size=20.0, order_type="limit", price=99.99)
    rt = runtime(sqlite_url, path, [limit], MAX_ORDER_VALUE=5000)
    step(rt, 6)
    bought = sum(t.quantity for t in fills(rt, "BUY"))
    sold = sum(t.quantity for t in fills(rt, "SELL"))
    assert 0 < bought < 20 and sold == pytest.approx(bought)
    with rt.db() as db:
        entry_order = db.scalars(select(Order).where(Order.purpose == "entry")).one()
    assert entry_order.status == "closed"  # its rest cancelled, done having filled a part
    assert the_plan(rt).status == "closed"


def test_an_engine_sell_of_part_of_a_plan_sells_that_part_and_keeps_the_rest_armed(
        sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 100, 100, 100, 98.5, 98.5, 98.5])
    half = Decision(actions=[Action(action=ActionType.SELL, symbol=SYMBOL, size=0.5,
                                    reason="take half")])
    rt = runtime(sqlite_url, path, [entry(size=1.0), Decision(), half])
    step(rt, 4)  # entered, held, sold half, booked
    plan = the_plan(rt)
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(0.5)]
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.5)
    assert plan.status == "open" and plan.filled_size == pytest.approx(0.5)
    assert (plan.stop_price, plan.target_price) == (99.0, 110.0)
    step(rt, 3)  # the stop still guards the half that is left
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason.startswith("stop hit")
    assert [t.quantity for t in fills(rt, "SELL")] == [pytest.approx(0.5)] * 2
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


@pytest.mark.parametrize(("open_", "wick", "fill"), [
    (100.0, (100.1, 94.0), 95.0),  # a wick through the stop: sold at the stop
    (93.0, (99.99, 92.5), 93.0),  # a gap below the stop: sold at the open
])
def test_a_stop_hit_fills_at_the_stop_or_the_gap_open_never_at_the_close(
        sqlite_url, tmp_path, open_: float, wick: tuple[float, float], fill: float) -> None:
    """The candle closes at 99.99, far above the stop at 95: the exit is booked at what the
    market gave when it traded through the stop, not at the close the loop sees it at."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [99.99, 100, 100],
                     wicks={200: wick}, opens={200: open_})
    rt = runtime(sqlite_url, path, [entry(stop=95.0, target=110.0)])
    step(rt, 3)
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "stop hit at 95"
    (sold,) = fills(rt, "SELL")
    assert sold.price == pytest.approx(fill) and sold.quantity == pytest.approx(1.0)
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


def test_on_a_real_exchange_a_stop_hit_exits_with_a_market_sell(sqlite_url, tmp_path) -> None:
    """The bot's stops are its own: an exchange gets a market sell when one is hit (a stop
    order placed there now would rest), and sells at what its market gives."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [99.99, 100, 100],
                     wicks={200: (100.1, 94.0)})
    rt = runtime(sqlite_url, path, [entry(stop=95.0, target=110.0)])
    rt.venue.is_paper = False  # type: ignore[misc]  # the account stands in for an exchange
    step(rt, 3)
    with rt.db() as db:
        exit_order = db.scalars(select(Order).where(Order.purpose == "exit")).one()
    assert (exit_order.type, exit_order.price) == ("market", None)
    (sold,) = fills(rt, "SELL")
    assert sold.price == pytest.approx(99.98, abs=0.05)  # the book at the close


def test_a_marketable_limit_entry_records_the_price_it_filled_at(sqlite_url, tmp_path) -> None:
    """A limit BUY above the ask fills at once at about the ask: the plan's entry (its
    figures, P&L and trailing) is that fill, not the limit."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100] * 3)
    marketable = entry(order_type="limit", price=115.0, stop=95.0, target=130.0)
    rt = runtime(sqlite_url, path, [marketable], MAX_ORDER_VALUE=5000)
    step(rt, 2)
    [bought] = fills(rt, "BUY")
    plan = the_plan(rt)
    assert bought.price < 101 and plan.status == "open"
    assert plan.entry_price == pytest.approx(bought.price)
    assert versions(rt, plan.id)[-1].entry_price == pytest.approx(bought.price)


def test_the_risk_layer_judges_a_marketable_limit_at_the_price_it_fills_at(
        sqlite_url, tmp_path) -> None:
    """A target 16% above the market is far beyond ten round trips' costs (about 2%),
    though only 0.9% above the limit of 115: the entry fills at about 100, so it is not
    refused."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100] * 3)
    marketable = entry(order_type="limit", price=115.0, stop=95.0, target=116.0)
    rt = runtime(sqlite_url, path, [marketable], MAX_ORDER_VALUE=5000,
                 MIN_TARGET_FEE_MULTIPLE=10)
    step(rt, 2)
    assert len(fills(rt, "BUY")) == 1
    assert the_plan(rt).status == "open"


def test_a_stop_hit_whose_exit_failed_is_sold_though_the_price_came_back(
        sqlite_url, tmp_path) -> None:
    """The stop is hit while the venue times out on every order: the exit fails and the plan
    says it will retry. The price is back above the stop at the next look, and the retry
    never came: the plan was re-armed and held the position its stop had called out. A stop
    seen hit is owed its exit until one is placed."""
    from tests.loop_harness import SendsRefused

    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100, 100, 100, 95, 100, 100, 100, 100])
    rt = runtime(sqlite_url, path, [entry(stop=97.0, target=120.0)], venue_class=SendsRefused,
                 ORDER_MAX_ATTEMPTS=1)
    venue = rt.venue
    assert isinstance(venue, SendsRefused)
    step(rt, 3)
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)
    venue.down = True
    step(rt, 3)  # the dip to 95, then the candle back to 100 from it: the exit fails
    with rt.db() as db:
        exits = db.scalars(select(Order).where(Order.purpose == "exit")).all()
    assert exits and all(o.status == "failed" for o in exits)
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)
    venue.down = False
    step(rt, 2)  # candles at 100 that never reach the stop
    plan = the_plan(rt)
    assert plan.status == "closed" and plan.exit_reason == "stop hit at 97", plan.status
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
