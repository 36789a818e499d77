"""Notifications: the rate limit per kind, delivery through apprise to a local server from
a real paper loop, failures counted and never raised, and the settings."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.alerts.batching import Batcher
from bot.alerts.delivery import Delivery
from bot.alerts.sink import EventSink
from bot.config import ConfigError, load_settings
from bot.engine.schema import Action, ActionType, Decision
from bot.model.events import Event, EventKind
from bot.model.fill import Fill
from bot.model.vocabulary import OrderPurpose, Side
from bot.steps.commands import obey_commands
from db.commands import enqueue_command
from db.models import Trade, TradePlan
from tests.conftest import candle_file
from tests.crafted import FIVE_MIN_MS, WARMUP, write_path
from tests.loop_harness import CostlyEngine, ScriptedEngine, make_runtime, step
from tests.notify_server import closed_port, notify_server
from tests.waiting import wait_for


def event(kind: EventKind = EventKind.FILL, text: str = "bought 1 BTC/USDT") -> Event:
    return Event(kind, "alpha", "PAPER", text)


def test_a_kind_sends_at_once_then_batches_a_burst_until_its_interval_passed() -> None:
    batcher = Batcher(min_interval=30)
    first = batcher.add(event(text="one"), now=100.0)
    assert [m.body for m in first] == ["[PAPER] alpha: one"]
    assert batcher.add(event(text="two"), now=101.0) == []
    assert batcher.add(event(text="three"), now=110.0) == []
    # another kind is not held up by the first
    assert len(batcher.add(event(EventKind.PLAN_CLOSED, "closed"), now=111.0)) == 1
    assert batcher.next_due() == 130.0
    assert batcher.due(129.9) == []
    [burst] = batcher.due(130.0)
    assert burst.events == 2 and burst.title == "2 fill events"
    assert burst.body == "[PAPER] alpha: two\n[PAPER] alpha: three"
    assert batcher.next_due() is None
    assert batcher.add(event(text="four"), now=140.0) == []  # 10 s after the burst went
    assert [m.body for m in batcher.drain()] == ["[PAPER] alpha: four"]


def test_delivery_posts_to_a_json_url() -> None:
    with notify_server() as (url, received):
        delivery = Delivery([url], min_interval=0)
        delivery.submit(event(text="bought 0.05 BTC/USDT at 43,000"))
        wait_for(lambda: received.containing("bought 0.05 BTC/USDT"))
        delivery.close()
    assert delivery.failures == 0 and delivery.sent == 1


def test_an_undeliverable_message_is_counted_not_raised() -> None:
    delivery = Delivery([f"json://127.0.0.1:{closed_port()}/hook"], min_interval=0,
                        attempts=2, retry_delay=0.01)
    delivery.submit(event())  # returns at once
    assert wait_for(lambda: delivery.failures) == 1
    delivery.close()
    assert delivery.sent == 0


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    delivery = Delivery([f"json://127.0.0.1:{closed_port()}/hook"], min_interval=3600,
                        capacity=1, attempts=1)
    for _ in range(50):
        delivery.submit(event())
    assert delivery.failures >= 40  # the worker takes a few off the queue meanwhile
    delivery.close()


def test_a_paper_loop_notifies_a_fill_and_a_plan_close(sqlite_url) -> None:
    engine = ScriptedEngine([
        Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.05,
                                 reason="test entry")]),
        Decision(),
        Decision(actions=[Action(action=ActionType.SELL, symbol="BTC/USDT",
                                 reason="engine exit")]),
    ])
    with notify_server() as (url, received):
        rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], engine,
                          NOTIFY_URLS=url, NOTIFY_EVENTS="all", NOTIFY_MIN_INTERVAL_SECONDS=0)
        step(rt, 5)
        fill = wait_for(lambda: received.containing("[PAPER] default: bought 0.05 BTC/USDT at"))
        closed = wait_for(lambda: received.containing("closed (engine exit): sold 0.05 BTC/USDT",
                                                      "realized PnL"))
        opened = received.containing("plan 1 opened: long 0.05 BTC/USDT", "stop", "target")
        rt.events.close()
    assert len(fill) == 1 and len(closed) == 1 and len(opened) == 1
    assert rt.events.failures == 0


def test_a_plan_sold_in_parts_is_told_closed_with_all_it_sold(sqlite_url) -> None:
    """The engine sells part of its plan, then the rest: the close names everything the
    plan sold, at its average price, and the realized PnL of both sales."""
    engine = ScriptedEngine([
        Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.05,
                                 reason="test entry")]),
        Decision(actions=[Action(action=ActionType.SELL, symbol="BTC/USDT", size=0.02,
                                 reason="take some")]),
        Decision(actions=[Action(action=ActionType.SELL, symbol="BTC/USDT",
                                 reason="engine exit")]),
    ])
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, engine)
        step(rt, 6)
        (closed,) = wait_for(lambda: received.containing("plan 1 closed"))
        rt.events.close()
    with rt.db() as db:
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
    assert [round(t.quantity, 8) for t in sells] == [0.02, 0.03]
    average = sum(t.quantity * t.price for t in sells) / 0.05
    realized = sum(t.realized_pnl for t in sells)
    assert "sold 0.05 BTC/USDT in 2 fills" in closed, closed
    assert f"at {average:,.8g}" in closed, closed
    assert -1 < realized < 0
    assert f"realized PnL {realized:+.4g} USDT" in closed, closed  # four digits below one


def test_notify_events_are_checked_by_name() -> None:
    with pytest.raises(ConfigError, match="NOTIFY_EVENTS: 'fills' is not an event kind"):
        load_settings(NOTIFY_EVENTS="fills")
    assert load_settings(NOTIFY_EVENTS="ALL").notify_events == [str(k) for k in EventKind]
    assert EventKind.FILL not in load_settings().notify_events  # the default leaves fills out


def test_a_bad_notify_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(NOTIFY_URLS="json://127.0.0.1/x,nosuch://tok-3f9a77c1")
    assert "NOTIFY_URLS: URL number 2 of 2 is not an apprise URL" in str(refused.value)
    assert "tok-3f9a77c1" not in str(refused.value)


def loop_with_server(sqlite_url, url: str, engine, *candles, **overrides):
    return make_runtime(sqlite_url, list(candles) or [candle_file("BTC_USDT-5m.csv")], engine,
                        NOTIFY_URLS=url, NOTIFY_EVENTS="all", NOTIFY_MIN_INTERVAL_SECONDS=0,
                        **overrides)


def test_the_breaker_tells_its_trip_and_its_recovery(sqlite_url) -> None:
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, ScriptedEngine([]), CIRCUIT_BREAKER_ERRORS=2,
                              CIRCUIT_BREAKER_COOLDOWN_SECONDS=60)
        assert rt.breaker is not None
        now = rt.now()
        rt.breaker.record_error(now)
        rt.breaker.record_error(now)
        wait_for(lambda: received.containing("circuit breaker tripped after 2 venue errors"))
        assert rt.breaker.is_open(now + timedelta(seconds=59))
        assert not rt.breaker.is_open(now + timedelta(seconds=60))
        wait_for(lambda: received.containing("circuit breaker closed"))
        rt.events.close()
    assert len(received.bodies()) == 2


def test_the_end_of_a_cool_down_is_told_though_no_entry_asks(sqlite_url) -> None:
    """The breaker is asked at each entry; a bot that holds still hears it closed."""
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, ScriptedEngine([]), CIRCUIT_BREAKER_ERRORS=1,
                              CIRCUIT_BREAKER_COOLDOWN_SECONDS=60)
        assert rt.breaker is not None
        rt.breaker.record_error(rt.now())
        step(rt, 2)  # five simulated minutes a step
        wait_for(lambda: received.containing("circuit breaker closed"))
        rt.events.close()


def test_the_llm_cost_cap_is_told_once_a_session(sqlite_url) -> None:
    entries = [Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.01,
                                        reason=f"entry {n}")]) for n in range(4)]
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, CostlyEngine(entries), LLM_SESSION_COST_CAP=1,
                              PLAN_MAX_PER_SYMBOL=5)
        step(rt, 4)  # the first costs 1.0: the next three are refused by the cap
        rt.events.close()
    assert len(received.containing("the LLM cost cap reached", "no new entries today")) == 1


def test_an_engine_that_spent_its_cap_is_told_though_it_asks_for_no_entry(sqlite_url) -> None:
    """An LLM engine stops calling at the cap (it holds): no entry reaches the risk layer."""
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, CostlyEngine([]), LLM_SESSION_COST_CAP=1)
        step(rt, 3)
        rt.events.close()
    assert len(received.containing("the LLM cost cap reached", "1.0000")) == 1


def test_commands_and_the_plans_a_close_all_closes_are_told(sqlite_url) -> None:
    engine = ScriptedEngine([Decision(actions=[Action(
        action=ActionType.BUY, symbol="BTC/USDT", size=0.05, reason="test entry")])])
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, engine)
        step(rt, 2)
        with rt.db() as db:
            enqueue_command(db, "close-all")
            enqueue_command(db, "close", "DOGE/USDT")
        obey_commands(rt)
        wait_for(lambda: received.containing("command close-all done: canceled"))
        wait_for(lambda: received.containing("command close failed: close needs a configured "
                                             "symbol"))
        wait_for(lambda: received.containing("plan 1 closed (close-all by operator)"))
        rt.events.close()


def test_each_rollover_sends_the_day_before_as_a_summary(sqlite_url, tmp_path) -> None:
    first_clock = datetime(2023, 11, 14, 23, 30, tzinfo=UTC)
    start_ms = int(first_clock.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 12), start_ms=start_ms)
    engine = ScriptedEngine([Decision(actions=[Action(
        action=ActionType.BUY, symbol="TST/USDT", size=1.0, reason="overnight")])])
    with notify_server() as (url, received):
        rt = loop_with_server(sqlite_url, url, engine, path, MAX_SPREAD_PCT=5,
                              MAX_SLIPPAGE_PCT=5)
        step(rt, 8)  # through midnight
        [summary] = wait_for(lambda: received.containing("day 2023-11-14 ended: net PnL -"))
        rt.events.close()
    assert "1 trade(s), fees 0.10" in summary and "[PAPER] default" in summary
    assert not received.containing("day 2023-11-15")


def test_apprise_logs_no_token_of_a_url_in_any_process(caplog) -> None:
    """The console's supervisor sends from a process with no log scrubber of its own."""
    user, token = "usr-5d1c2e9a", "tok-77b0c4f1"
    caplog.set_level(logging.DEBUG)
    delivery = Delivery([f"json://{user}:{token}@127.0.0.1:{closed_port()}/hook"],
                        min_interval=0, attempts=1)
    delivery.submit(event())
    wait_for(lambda: delivery.failures)
    delivery.close()
    assert "127.0.0.1" in caplog.text  # apprise did log the attempt
    assert user not in caplog.text and token not in caplog.text


def test_a_message_that_cannot_be_worded_is_counted_never_raised_into_the_loop() -> None:
    """The hooks word a message on the loop's thread: a value the wording cannot format (a
    plan without its stop and target) costs that message, not the booking that told it."""
    fill = Fill(trade_id="t1", symbol="BTC/USDT", side=Side.BUY, amount=0.05, price=43_000.0,
                cost=None, fee_cost=2.15, fee_currency="USDT", timestamp_ms=None, order_id="o1",
                client_order_id="td-1", liquidity="taker")
    plan = TradePlan(id=7, symbol="BTC/USDT", side="BUY", entry_price=43_000.0,
                     stop_price=None, target_price=None, size=0.05, filled_size=0.05)
    with notify_server() as (url, received):
        sink = EventSink("alpha", "PAPER", frozenset(EventKind), Delivery([url], min_interval=0))
        sink.fill_booked(fill, 0.0, 2.15, OrderPurpose.ENTRY, plan)
        wait_for(lambda: received.containing("[PAPER] alpha: bought 0.05 BTC/USDT at 43,000"))
        sink.close()
    assert sink.failures == 1 and not received.containing("plan 7 opened")


def test_a_btc_quoted_fills_fee_keeps_its_digits() -> None:
    """A fee in BTC is a few satoshi: to four decimals it read 'fee 0.0000 BTC', the fee
    the bot booked told as none; it keeps four significant digits, as every other figure
    of the alerts does (``bot.model.figures``)."""
    fill = Fill(trade_id="t1", symbol="ETH/BTC", side=Side.SELL, amount=0.1, price=0.05123,
                cost=None, fee_cost=0.000005123, fee_currency="BTC", timestamp_ms=None,
                order_id="o1", client_order_id="td-1", liquidity="taker")
    with notify_server() as (url, received):
        sink = EventSink("alpha", "PAPER", frozenset({EventKind.FILL}),
                         Delivery([url], min_interval=0))
        sink.fill_booked(fill, -0.0000412, 0.000005123, OrderPurpose.EXIT, None)
        wait_for(lambda: received.containing("sold 0.1 ETH/BTC"))
        sink.close()
    assert received.containing(
        "sold 0.1 ETH/BTC at 0.05123 (fee 0.00000512 BTC, realized PnL -0.0000412 BTC)")
