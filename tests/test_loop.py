"""The loop's steps on the paper venue with a replayed real candle file."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.audit import audit
from bot.engine.schema import Action, ActionType, Decision
from bot.steps.commands import obey_commands
from bot.steps.fill_sync import sync_fills
from db.commands import enqueue_command
from db.models import (
    OHLCV,
    Command,
    LLMTrace,
    MarketData,
    OpenOrder,
    Order,
    Position,
    Trade,
    TradePlan,
    TradePlanVersion,
)
from db.paper_store import PaperStore
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step


def buy(size: float = 0.05, **extra) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=size,
                                    reason="test entry", **extra)])


@pytest.fixture
def btc():
    return candle_file("BTC_USDT-5m.csv")


def count(rt, model) -> int:
    with rt.db() as db:
        return db.scalar(select(func.count()).select_from(model))


def test_each_step_writes_its_tables(sqlite_url, btc) -> None:
    engine = ScriptedEngine([buy()])
    rt = make_runtime(sqlite_url, [btc], engine)
    step(rt)
    assert count(rt, MarketData) == 1
    assert count(rt, OHLCV) > 100  # first fetch fills the candle cache
    candles_after_first = count(rt, OHLCV)
    assert count(rt, TradePlan) == 1 and count(rt, Order) == 1
    step(rt)  # the entry's fill is booked by the next iteration's fill sync
    assert count(rt, OHLCV) == candles_after_first + 1  # only the new candle
    with rt.db() as db:
        trade = db.scalars(select(Trade)).one()
        plan = db.scalars(select(TradePlan)).one()
        position = db.scalars(select(Position)).one()
        trace = db.scalars(select(LLMTrace).order_by(LLMTrace.id)).first()
    assert trade.action == "BUY" and trade.quantity == pytest.approx(0.05)
    assert trade.fee > 0 and trade.reason == "test entry"
    assert trade.plan_id == plan.id and trade.trace_id == trace.id
    assert plan.status == "open" and plan.filled_size == pytest.approx(0.05)
    assert plan.stop_price < plan.entry_price < plan.target_price
    assert position.quantity == pytest.approx(0.05)
    result = json.loads(trace.execution_result)
    assert result["actions"][0]["status"] == "placed"
    assert all(c.ok for c in audit(rt.db()))


def test_fill_sync_books_each_fill_once_across_restarts(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([buy()]))
    step(rt, 2)
    assert count(rt, Trade) == 1
    assert sync_fills(rt) == 0
    again = make_runtime(sqlite_url, [btc], ScriptedEngine([]))  # a restarted bot
    assert again.book.quantity("BTC/USDT") == pytest.approx(0.05)
    assert sync_fills(again) == 0
    step(again, 3)
    assert count(again, Trade) == 1


def test_foreign_fills_are_skipped_and_counted(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    rt.venue.create_order("BTC/USDT", "market", "buy", 0.01, None,
                          {"clientOrderId": "someone-else-1"})
    step(rt)
    assert count(rt, Trade) == 0
    assert rt.skipped_foreign_fills == 1


def test_stop_is_enforced_and_exit_sized_from_holdings(sqlite_url, btc) -> None:
    # A stop just under the market: the first dip exits the plan.
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]), TRAIL_BREAKEVEN_PCT=0)
    step(rt)
    price = rt.quotes["BTC/USDT"].last
    rt.engine.decisions.append(buy(stop=price * 0.999, target=price * 1.5))
    for _ in range(400):
        step(rt)
        with rt.db() as db:
            plan = db.scalars(select(TradePlan)).first()
        if plan is not None and plan.status == "closed":
            break
    assert plan.status == "closed" and plan.exit_reason.startswith("stop hit")
    with rt.db() as db:
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
        versions = db.scalars(select(TradePlanVersion).where(
            TradePlanVersion.plan_id == plan.id)).all()
    assert sum(s.quantity for s in sells) == pytest.approx(0.05)
    assert [v.version for v in versions] == list(range(1, plan.version + 1))
    assert rt.book.quantity("BTC/USDT") == pytest.approx(0.0)


def test_close_all_flattens_cancels_and_pauses(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt)
    price = rt.quotes["BTC/USDT"].last
    rt.engine.decisions += [buy(), buy(order_type="limit", price=price * 0.9, size=0.02)]
    step(rt, 2)
    assert rt.book.quantity("BTC/USDT") > 0
    with rt.db() as db:
        enqueue_command(db, "close-all")
    obey_commands(rt)
    with rt.db() as db:
        command = db.scalars(select(Command)).one()
        assert command.status == "done", command.result
        assert command.executed_at is not None
        assert db.scalar(select(func.count()).select_from(Position)) == 0
        assert db.scalar(select(func.count()).select_from(OpenOrder)) == 0
        assert all(p.status == "closed" for p in db.scalars(select(TradePlan)))
    assert rt.paused
    assert rt.venue.fetch_open_orders() == []
    assert all(c.ok for c in audit(rt.db()))


def test_stop_command_cancels_entries_and_ends(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt)
    price = rt.quotes["BTC/USDT"].last
    rt.engine.decisions.append(buy(order_type="limit", price=price * 0.9, size=0.02))
    step(rt)
    assert len(rt.venue.fetch_open_orders()) == 1
    with rt.db() as db:
        enqueue_command(db, "stop")
        enqueue_command(db, "launch-rockets")
    obey_commands(rt)
    assert rt.stop_requested
    assert rt.venue.fetch_open_orders() == []
    with rt.db() as db:
        statuses = {c.command: (c.status, c.result) for c in db.scalars(select(Command))}
    assert statuses["stop"][0] == "done"
    assert statuses["launch-rockets"][0] == "failed"
    assert "unknown command" in statuses["launch-rockets"][1]


@pytest.mark.slow
def test_rules_engine_trades_the_real_file_and_stays_consistent(sqlite_url, btc) -> None:
    rt = make_runtime(sqlite_url, [btc])
    step(rt, 400)
    assert count(rt, Trade) > 0
    assert count(rt, LLMTrace) == 400
    assert all(c.ok for c in audit(rt.db())), [c for c in audit(rt.db()) if not c.ok]


def test_a_fresh_install_trades_on_its_first_iterations(sqlite_url) -> None:
    """Embedded defaults (synthetic market, rules engine): a plan with a fill at once."""
    from bot.config import load_settings
    from bot.engine.rules import RulesEngine
    from bot.loop import run_iteration, start
    from bot.runtime import Runtime
    from bot.venue.feeds import SyntheticFeed
    from bot.venue.paper import PaperVenue
    from db.engine import make_engine, session_factory

    wall = [1_790_000_000_000 + 1_234_567]  # any minute of any hour will do
    settings = load_settings(DATABASE_URL=sqlite_url)
    factory = session_factory(make_engine(sqlite_url))
    feed = SyntheticFeed(settings.symbols, seed=settings.feed_seed, clock=lambda: wall[0])
    rt = Runtime(settings=settings, db=factory, venue=PaperVenue(feed, PaperStore(factory, "default")),
                 engine=RulesEngine(settings))
    start(rt)
    for _ in range(2):
        run_iteration(rt)
        wall[0] += 10_000
        rt.venue.advance()
    assert count(rt, TradePlan) >= 1
    assert count(rt, Trade) >= 1
