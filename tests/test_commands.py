"""Operator commands: each ends done or failed with executed_at and a result.

The second half runs the real ``run_forever`` on a thread: a command is picked up while
the loop sleeps, and a close-all is not held up behind a slow engine call, whose pending
decision is abandoned and traced as such.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot import store as store_module
from bot.config import load_settings
from bot.engine.base import DecisionContext, EngineResult
from bot.engine.schema import Action, ActionType, Decision
from bot.loop import run_forever, run_iteration
from bot.runtime import Runtime
from bot.steps.commands import obey_commands
from bot.venue.feeds import SyntheticFeed
from bot.venue.paper import PaperVenue
from db.commands import enqueue_command
from db.engine import bound_engine, make_engine, session_factory
from db.models import (
    Bot,
    BotStatus,
    Command,
    LLMTrace,
    Order,
    SessionStatsCache,
    Trade,
    TradePlan,
)
from db.paper_store import PaperStore
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.waiting import wait_for

BTC = "BTC/USDT"


def buy(**extra) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, reason="cmd test",
                                    **{"size": 0.05, **extra})])


def command(rt: Runtime, name: str, argument: str | None = None) -> Command:
    """Queue one command, let the bot obey it, and return the finished row."""
    with rt.db() as db:
        command_id = enqueue_command(db, name, argument)
    obey_commands(rt)
    with rt.db() as db:
        row = db.get(Command, command_id)
    assert row is not None and row.executed_at is not None and row.result
    return row


def test_each_command_ends_done_or_failed_with_a_result(sqlite_url) -> None:
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([buy()]),
                      PLAN_MAX_PER_SYMBOL=2)
    step(rt, 2)
    assert rt.book.quantity(BTC) == pytest.approx(0.05)

    paused = command(rt, "pause")
    assert paused.status == "done" and rt.paused
    resumed = command(rt, "resume")
    assert resumed.status == "done" and not rt.paused

    last = rt.quotes[BTC].last
    rt.engine.decisions.append(buy(order_type="limit", price=round(last * 0.9, 1)))
    step(rt)
    with rt.db() as db:
        resting = db.scalars(select(Order).where(Order.type == "limit")).one()
    assert resting.status == "open" and resting.order_id
    canceled = command(rt, "cancel", resting.order_id)
    assert canceled.status == "done" and "canceled" in canceled.result
    with rt.db() as db:
        assert db.get(Order, resting.id).status == "canceled"

    again = command(rt, "cancel", resting.order_id)
    assert again.status == "failed" and "not open" in again.result
    missing = command(rt, "cancel", "no-such-order")
    assert missing.status == "failed" and "no order of ours" in missing.result
    wrong = command(rt, "close", "XRP/USDT")
    assert wrong.status == "failed" and "configured symbol" in wrong.result

    closed = command(rt, "close", BTC)
    assert closed.status == "done", closed.result
    assert rt.book.quantity(BTC) == pytest.approx(0.0)
    with rt.db() as db:
        assert all(p.status == "closed" for p in db.scalars(select(TradePlan)))

    unknown = command(rt, "dance")
    assert unknown.status == "failed" and "unknown command 'dance'" in unknown.result


class SlowEngine(ScriptedEngine):
    """Like a Gemini call that takes its time: blocks until released (or 30 s)."""

    def __init__(self, decisions: list[Decision]) -> None:
        super().__init__(decisions)
        self.called = threading.Event()
        self.release = threading.Event()

    def decide(self, context: DecisionContext) -> EngineResult:
        self.called.set()
        self.release.wait()  # until the test lets go: a command that waited on it never ends
        return super().decide(context)


def status_of(rt: Runtime, command_id: int) -> str:
    with rt.db() as db:
        return db.get(Command, command_id).status


def stop_bot(rt: Runtime, bot: threading.Thread) -> None:
    """STOP the bot that runs ``run_forever`` on ``bot``: it obeys, and its thread ends."""
    with rt.db() as db:
        stop = enqueue_command(db, "stop")
    wait_for(lambda: status_of(rt, stop) == "done", every=0.05)
    bot.join(10)
    assert not bot.is_alive()


def test_polls_for_commands_of_other_processes_at_most_every_quiet_interval(
        sqlite_url, monkeypatch) -> None:
    """A replay asks "anything pending?" at most every QUIET_POLL_SECONDS of real time, but a
    command its own store queued is seen at once."""
    clock = [1000.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    assert obey_commands(rt) == 0  # asks, finds none
    other = session_factory(bound_engine(rt.db))
    with other() as db:  # as the console would: another process, another connection
        bot = db.scalar(select(Bot.id).where(Bot.name == rt.settings.bot_name))
        db.add(Command(command="pause", status="pending", bot_id=bot))
        db.commit()
    clock[0] += store_module.QUIET_POLL_SECONDS / 2
    assert obey_commands(rt) == 0 and not rt.paused  # within the interval: not asked
    clock[0] += store_module.QUIET_POLL_SECONDS / 2
    assert obey_commands(rt) == 1 and rt.paused
    assert obey_commands(rt) == 0  # asks again after handling some, finds none
    with rt.db() as db:
        enqueue_command(db, "resume")
    assert obey_commands(rt) == 1 and not rt.paused  # queued by its store: seen at once


def thinking_bot(url: str, engine: SlowEngine, loop_interval: int
                 ) -> tuple[Runtime, threading.Thread]:
    """A bot looping on its thread, every ``loop_interval`` seconds, with a slow engine."""
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], engine,
                      LOOP_INTERVAL_SECONDS=loop_interval)
    bot = threading.Thread(target=run_forever, args=(rt,), daemon=True)
    bot.start()
    return rt, bot


def close_all_while_thinking(rt: Runtime, engine: SlowEngine) -> int:
    """A close-all queued while the engine thinks, once the bot has taken it; its id."""
    assert engine.called.wait(20), "the engine was never asked"
    with rt.db() as db:
        close_all = enqueue_command(db, "close-all")
    # the decision is still blocked: close-all can only end here by not waiting for it
    wait_for(lambda: status_of(rt, close_all) != "pending", every=0.05)
    return close_all


@pytest.mark.slow
def test_close_all_abandons_a_slow_decision_and_sleeping_bot_obeys_at_once(sqlite_url) -> None:
    engine = SlowEngine([buy()])
    rt, bot = thinking_bot(sqlite_url, engine, loop_interval=3600)
    try:
        close_all = close_all_while_thinking(rt, engine)
        assert status_of(rt, close_all) == "done" and not engine.release.is_set()
        with rt.db() as db:
            trace = db.scalars(select(LLMTrace)).one()
            assert db.scalars(select(Order)).first() is None  # the slow BUY never went out
        assert trace.status == "abandoned" and "close-all" in trace.errors[0]
        assert rt.paused  # close-all stays paused until resume

        # The loop now sleeps an hour between iterations: a command done within the
        # deadline was picked up while it slept, not at the next iteration.
        with rt.db() as db:
            resume = enqueue_command(db, "resume")
        wait_for(lambda: status_of(rt, resume) == "done", every=0.05)
        assert not rt.paused
        stop_bot(rt, bot)
    finally:
        engine.release.set()
        rt.stop_requested = True
        bot.join(10)


class SlowCostlyEngine(SlowEngine):
    """A slow LLM call that costs 1.0 once it answers, as a priced model's does."""

    def decide(self, context: DecisionContext) -> EngineResult:
        result = super().decide(context)
        result.cost, result.tokens_in, result.tokens_out = 1.0, 2000, 80
        result.cache_write_tokens, result.cache_read_tokens = 300, 1500
        return result


@pytest.mark.slow
def test_a_decision_abandoned_for_a_close_all_still_counts_what_its_call_cost(
        sqlite_url) -> None:
    """A close-all abandons the decision an LLM is still thinking over, but the call goes on
    and the provider charges it. Its trace kept a cost of 0 for ever: the session's LLM cost,
    its net PnL and its cost cap left it out. Once the call answers, its cost and tokens are
    booked on its trace and in the session's figures, though the bot is paused."""
    engine = SlowCostlyEngine([])
    rt, bot = thinking_bot(sqlite_url, engine, loop_interval=1)
    try:
        assert status_of(rt, close_all_while_thinking(rt, engine)) == "done"
        with rt.db() as db:
            abandoned = db.scalars(select(LLMTrace)).one()
        assert abandoned.status == "abandoned" and abandoned.cost == 0
        engine.release.set()  # the call answers; the next iteration books what it cost

        def booked() -> LLMTrace | None:
            with rt.db() as db:
                trace = db.get(LLMTrace, abandoned.id)
                return trace if trace is not None and trace.cost > 0 else None
        trace = wait_for(booked, timeout=30, every=0.05)
        assert (trace.cost, trace.tokens_in, trace.tokens_out) == (1.0, 2000, 80)
        assert (trace.cache_write_tokens, trace.cache_read_tokens) == (300, 1500)
        stop_bot(rt, bot)
        with rt.db() as db:
            traced = db.scalar(select(func.sum(LLMTrace.cost)))
            cached = db.get(SessionStatsCache, rt.session_id)
        assert cached is not None and cached.total_llm_cost == pytest.approx(traced)
    finally:
        engine.release.set()
        rt.stop_requested = True
        bot.join(10)


def test_command_times_are_wall_times_in_a_replay_too(sqlite_url) -> None:
    """executed_at is the bot's wall clock (a fake one here), never the simulated market's,
    and never before the command was queued."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    step(rt)
    market = rt.now()
    with rt.db() as db:
        pause = db.get(Command, enqueue_command(db, "pause"))
    rt.wall_clock = lambda: pause.created_at + timedelta(seconds=7)
    assert obey_commands(rt) == 1
    with rt.db() as db:
        assert db.get(Command, pause.id).executed_at == pause.created_at + timedelta(seconds=7)
    assert rt.now() == market  # a replay's market stays where its clock is

    # a bot whose clock lags the host that queued the command
    with rt.db() as db:
        resume = db.get(Command, enqueue_command(db, "resume"))
    rt.wall_clock = lambda: resume.created_at - timedelta(seconds=3)
    assert obey_commands(rt) == 1
    with rt.db() as db:
        assert db.get(Command, resume.id).executed_at == resume.created_at


@pytest.mark.slow
def test_a_close_all_during_the_sleep_trades_at_the_market_of_its_time(sqlite_url) -> None:
    """A live paper bot (synthetic market on a fake wall clock) buys, then sleeps; the market
    moves on; a close-all sells at the market as of the command, not of the last iteration."""
    wall_ms = [1_767_225_600_000]  # 2026-01-01, a minute boundary
    feed = SyntheticFeed(["BTC/USDT"], seed=3, clock=lambda: wall_ms[0])
    factory = session_factory(make_engine(sqlite_url))
    settings = load_settings(DATABASE_URL=sqlite_url, SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h",
                             LOOP_INTERVAL_SECONDS=600)
    rt = Runtime(settings=settings, db=factory, venue=PaperVenue(feed, PaperStore(factory, "default")),
                 engine=ScriptedEngine([buy(size=0.01)]), run_name="default")
    bot = threading.Thread(target=run_forever, args=(rt,), daemon=True)
    bot.start()
    try:
        def slept_after_buying() -> bool:
            with rt.db() as db:
                looped = db.scalar(select(BotStatus.loop_count)) or 0
                return looped >= 1 and db.scalars(select(Order)).first() is not None
        wait_for(slept_after_buying, timeout=30)
        wall_ms[0] += 5 * 60_000  # five minutes into the bot's ten-minute sleep
        with rt.db() as db:
            close_all = enqueue_command(db, "close-all")
        wait_for(lambda: status_of(rt, close_all) != "pending", timeout=20)
        assert status_of(rt, close_all) == "done"
        with rt.db() as db:
            sold = db.scalars(select(Trade).where(Trade.action == "SELL")).one()
        assert sold.timestamp == datetime.fromtimestamp(wall_ms[0] / 1000, UTC)
        best_bid, depth = feed.book(BTC, 20)["bids"][0]
        assert depth >= sold.quantity and sold.price == pytest.approx(best_bid)
        stop_bot(rt, bot)
    finally:
        rt.stop_requested = True
        bot.join(10)


def test_a_close_all_hit_by_a_venue_fault_pauses_at_once_and_is_retried_to_flat(
        sqlite_url, monkeypatch) -> None:
    """A timeout from the venue halfway through a close-all neither fails it (exits and
    close-all are never refused) nor leaves the bot free to buy again: the bot pauses at
    once, the command waits, and the next iteration finishes it, selling the position once."""
    from bot.venue.base import TransientVenueError

    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([buy()]))
    step(rt, 2)
    assert rt.book.quantity(BTC) > 0
    fetch = rt.venue.fetch_my_trades
    faults = iter([TransientVenueError("injected timeout on fetch_my_trades")])

    def flaky_fetch(*args, **kwargs):
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return fetch(*args, **kwargs)

    monkeypatch.setattr(rt.venue, "fetch_my_trades", flaky_fetch)
    with rt.db() as db:
        close_all = enqueue_command(db, "close-all")
    obey_commands(rt)
    with rt.db() as db:
        row = db.get(Command, close_all)
    assert row.status == "pending" and "injected timeout" in (row.result or "")
    assert rt.paused
    step(rt)
    with rt.db() as db:
        row = db.get(Command, close_all)
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
    assert row.status == "done", row.result
    assert rt.book.quantity(BTC) == 0 and len(sells) == 1 and rt.paused


@pytest.mark.parametrize("journaled", ["as the venue answered", "without its venue id",
                                       "as failed"])
def test_a_close_all_does_not_sell_again_what_an_exit_already_sold(sqlite_url, monkeypatch,
                                                                     journaled) -> None:
    """An exit the venue filled but whose fill it shows late (venues do) still sits in the
    bot's book. A close-all then must not sell those coins a second time, which on an account
    shared with another bot would sell the other's: it waits for that fill instead. So too
    when the journal lacks the exit's venue id (a duplicate client id answered a retry) or
    took it for failed (a timeout after the venue had taken it, then timeouts before)."""
    sell_all = Decision(actions=[Action(action=ActionType.SELL, symbol=BTC, reason="out")])
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")],
                      ScriptedEngine([buy(), Decision(actions=[]), sell_all]))
    step(rt, 2)
    held = rt.book.quantity(BTC)
    assert held > 0
    fetch = rt.venue.fetch_my_trades
    late = {"on": True}

    def sells_shown_late(*args, **kwargs):
        trades = fetch(*args, **kwargs)
        return [t for t in trades if not (late["on"] and t["side"] == "sell")]

    monkeypatch.setattr(rt.venue, "fetch_my_trades", sells_shown_late)
    step(rt)  # the engine sells: the venue fills it, the bot does not see the fill yet
    assert rt.book.quantity(BTC) == held
    if journaled != "as the venue answered":
        with rt.db() as db:
            exit_order = db.scalars(select(Order).where(Order.side == "SELL")).one()
            exit_order.order_id = None
            exit_order.status = "open" if journaled == "without its venue id" else "failed"
            db.commit()
    close_all = command(rt, "close-all")
    assert close_all.status == "done", close_all.result
    with rt.db() as db:
        sells = db.scalars(select(Order).where(Order.side == "SELL")).all()
    assert [o.purpose for o in sells] == ["exit"], "the close-all sold the same coins again"
    late["on"] = False
    step(rt)
    with rt.db() as db:
        booked = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
    assert len(booked) == 1 and rt.book.quantity(BTC) == 0


@pytest.mark.parametrize("venue_took_it", [False, True], ids=["never sent", "taken, unanswered"])
def test_a_close_all_withdraws_an_entry_left_unsent(sqlite_url, tmp_path, venue_took_it) -> None:
    """An entry the venue timed out on, whose give-up a locked database did not record,
    stays in the journal as never sent, to be sent again at the next iteration. A close-all
    in the sleep between withdraws it: the entry is not sent after the close-all (it bought
    a position whose plan the close-all had closed, so no stop guarded it, in a bot paused
    until resume), and one the venue did take (it timed out answering) is cancelled there
    instead of resting to fill later."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from bot.loop import obey_during_sleep, run_iteration
    from bot.venue.base import TransientVenueError
    from tests.crafted import flat_then
    from tests.test_outage import on_statement
    from tests.test_plans import LOOSE, SYMBOL, entry

    class TimesOut(PaperVenue):
        """The paper exchange, timing out on every order while ``down`` (after taking it,
        with ``venue_took_it``)."""

        down = False

        def create_order(self, *args, **kwargs):
            if not self.down:
                return super().create_order(*args, **kwargs)
            if venue_took_it:
                super().create_order(*args, **kwargs)
            raise TransientVenueError("timeout (the exchange is not answering)")

    # a limit below the market: the order rests on the venue, as an entry in flight does
    limit = entry(stop=90.0, target=120.0, order_type="limit", price=99.0)
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 6 + [98.0] * 6)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([limit]), venue_class=TimesOut,
                      ORDER_MAX_ATTEMPTS=1, **LOOSE)
    venue = rt.venue
    assert isinstance(venue, TimesOut)
    venue.down = True

    def locked() -> None:
        raise OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    on_statement(rt, "UPDATE orders", 1, locked)
    run_iteration(rt)
    with rt.db() as db:
        (unsent,) = db.scalars(select(Order).where(Order.purpose == "entry"))
        assert unsent.status == "new" and unsent.order_id is None
    venue.down = False
    rt.errors.clear()
    with rt.db() as db:
        close_all = enqueue_command(db, "close-all")
    obey_during_sleep(rt)  # on the same clock: the entry is still the decision of now
    with rt.db() as db:
        row = db.get(Command, close_all)
    assert row is not None and row.status == "done", row.result
    step(rt, 8)  # the market falls through the limit
    with rt.db() as db:
        buys = db.scalars(select(Trade).where(Trade.action == "BUY")).all()
        plan = db.scalars(select(TradePlan)).one()
    assert buys == [], "the entry bought after the close-all"
    assert venue.fetch_open_orders() == [] and rt.book.quantity(SYMBOL) == 0
    assert plan.status == "closed" and rt.paused


def test_a_close_all_the_book_cannot_take_at_once_sells_the_rest_at_the_next_iterations(
        sqlite_url, tmp_path) -> None:
    """A market too thin for the position (the paper venue fills a market order only within
    its slippage cap) sells part of it. The close-all failed ("positions still open") and was
    never tried again, and the plan, its exit incomplete, was re-armed with its old stop and
    target: the position the operator closed stayed open. The close-all now waits, as for a
    venue fault, and sells the rest at the next iterations until the bot is flat."""
    from tests.crafted import DEFAULT_START_MS, FIVE_MIN_MS, WARMUP
    from tests.test_plans import LOOSE, SYMBOL, entry

    path = tmp_path / "TST_USDT-5m.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(WARMUP + 60):  # the market dries up after the entry
        volume = 50.0 if i < WARMUP + 2 else 0.005
        lines.append(f"{DEFAULT_START_MS + i * FIVE_MIN_MS},100,100.02,99.98,100,{volume}")
    path.write_text("\n".join(lines) + "\n")
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([entry(stop=50.0, target=200.0)]),
                      **LOOSE)
    step(rt, 30)
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)
    with rt.db() as db:
        close_all = enqueue_command(db, "close-all")
    obey_commands(rt)
    with rt.db() as db:
        row = db.get(Command, close_all)
        assert row is not None and row.status == "pending", row.result
        assert "still open" in (row.result or "")
    assert 0 < rt.book.quantity(SYMBOL) < 1.0 and rt.paused
    step(rt, 6)
    with rt.db() as db:
        row = db.get(Command, close_all)
        plans = db.scalars(select(TradePlan)).all()
        bought = db.scalars(select(Trade).where(Trade.action == "BUY")).all()
    assert row is not None and row.status == "done", row.result
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0, abs=1e-9)
    assert [p.status for p in plans] == ["closed"] and len(bought) == 1 and rt.paused



def holding_one(url: str, tmp_path, closes: list[float], venue_class: type[PaperVenue], *,
                stop: float, **settings: object) -> Runtime:
    """A bot on ``venue_class`` holding 1.0 TST/USDT bought at 100 under a plan stopping at
    ``stop``, the market then going through ``closes``."""
    from tests.crafted import flat_then
    from tests.test_plans import LOOSE, SYMBOL, entry

    path = flat_then(tmp_path / "TST_USDT-5m.csv", closes)
    rt = make_runtime(url, [path], ScriptedEngine([entry(stop=stop, target=120.0)]),
                      venue_class=venue_class, **LOOSE, **settings)
    step(rt, 2)
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)
    return rt


def left_pending(rt: Runtime, command: str, symbol: str) -> tuple[int, str]:
    """Queue a close of ``symbol`` (or a close-all) and obey it, which leaves it pending:
    its id and result."""
    with rt.db() as db:
        queued = enqueue_command(db, command, symbol if command == "close" else None)
    obey_commands(rt)
    with rt.db() as db:
        row = db.get(Command, queued)
        assert row is not None and row.status == "pending", row.result
        return queued, row.result or ""


@pytest.mark.parametrize("command", ["close", "close-all"])
def test_a_close_meeting_a_venue_timeout_waits_and_sells_at_the_next_iteration(
        sqlite_url, tmp_path, command) -> None:
    """The venue times out on the close's sell (every attempt). That is a venue fault, not
    a refusal: the command stays pending and sells at the next iteration. It failed
    ('could not flatten'), and the plan, its exit failed, was re-armed with its old stop and
    target: the position the operator closed stayed open, and after a 'close' the bot went
    on trading the symbol."""
    from tests.loop_harness import SendsRefused
    from tests.test_plans import SYMBOL

    rt = holding_one(sqlite_url, tmp_path, [100.0] * 12, SendsRefused, stop=90.0,
                     ORDER_MAX_ATTEMPTS=2)
    venue = rt.venue
    assert isinstance(venue, SendsRefused)
    venue.down = True
    queued, result = left_pending(rt, command, SYMBOL)
    assert "timeout" in result
    venue.down = False
    step(rt, 1)
    with rt.db() as db:
        row = db.get(Command, queued)
        plans = db.scalars(select(TradePlan)).all()
    assert row is not None and row.status == "done", row.result
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0, abs=1e-9)
    assert [p.status for p in plans] == ["closed"]


@pytest.mark.parametrize("command", ["close", "close-all", None], ids=["close", "close-all",
                                                                     "the plan's stop"])
def test_a_sell_given_up_on_that_the_venue_filled_is_not_sold_again(
        sqlite_url, tmp_path, command) -> None:
    """The venue takes a close's sell (or a plan's exit at its stop), fills it at once and
    times out answering; the journal marks it failed, with no venue id, and the venue's
    trade history shows its fill late. The close, and the plan's exit retried at the next
    iteration, took it for a sell that never reached the venue and sold again: on an
    account shared with another bot, the other bot's coins. The sell is now looked up by its
    client id, open or done, and the fill it sold is awaited."""
    from tests.loop_harness import FilledShownLate
    from tests.test_plans import SYMBOL

    rt = holding_one(sqlite_url, tmp_path, [100.0] * 3 + [95.0] * 12, FilledShownLate,
                     stop=90.0 if command else 97.0, ORDER_MAX_ATTEMPTS=1)
    venue = rt.venue
    assert isinstance(venue, FilledShownLate)
    venue.balances["TST"][0] += 1.0  # another bot's coins on the shared account
    venue.down = venue.late = True
    if command is None:  # the market falls through the stop: the exit sells, unanswered
        for _ in range(3):
            run_iteration(rt)
            rt.errors.clear()
            venue.advance()
        venue.down = False
        step(rt, 1)  # the plan's exit is retried
    else:
        with rt.db() as db:
            queued = enqueue_command(db, command, SYMBOL if command == "close" else None)
        obey_commands(rt)
        venue.down = False
        obey_commands(rt)  # retried, were it left pending
    assert len(venue.unshown) == 1
    sold = [o for o in venue.orders.values() if o.side == "sell" and o.filled > 0]
    assert len(sold) == 1, "sold twice"
    assert venue.balances["TST"][0] == pytest.approx(1.0), "the other bot's coins were sold"
    venue.late = False
    step(rt, 2)
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0, abs=1e-9)
    assert venue.balances["TST"][0] == pytest.approx(1.0), "the other bot's coins were sold"
    if command is not None:
        with rt.db() as db:
            row = db.get(Command, queued)
            assert row is not None and row.status == "done", row.result


@pytest.mark.parametrize("command", ["close", "close-all", None], ids=["close", "close-all",
                                                                     "the plan's stop"])
def test_a_sell_taken_by_the_venue_but_given_up_on_is_not_sold_again(
        sqlite_url, tmp_path, command) -> None:
    """The venue takes the close's sells (the plan's exit, then the close's own) and times
    out answering each: the journal marks them failed, with no venue id, while they rest on
    the venue. The retry at the next iteration sold the position again beside them: with
    another bot's coins on the account it sold those, and the sells taken earlier still
    rested to sell once more. It now finds each by its client id, cancels it and sells only
    what it did not sell. So too for a plan's own exit at its stop, retried at the next
    iteration."""
    from tests.loop_harness import TakenUnanswered
    from tests.test_plans import SYMBOL

    rt = holding_one(sqlite_url, tmp_path, [100.0] * 3 + [95.0] * 12, TakenUnanswered,
                     stop=90.0 if command else 97.0, ORDER_MAX_ATTEMPTS=1)
    venue = rt.venue
    assert isinstance(venue, TakenUnanswered)
    venue.balances["TST"][0] += 1.0  # another bot's coins on the shared account
    venue.down = True
    if command is None:  # the market falls through the stop: the exit is taken, unanswered
        for _ in range(3):
            run_iteration(rt)
            rt.errors.clear()
            venue.advance()
    else:
        queued, _ = left_pending(rt, command, SYMBOL)
    with rt.db() as db:
        given_up = db.scalars(select(Order).where(Order.side == "SELL")).all()
    assert any(o.status == "failed" and o.order_id is None for o in given_up)
    resting = sum(o["remaining"] for o in venue.fetch_open_orders(SYMBOL))
    assert resting == pytest.approx(1.0), "the position was sold twice"
    venue.down = False
    if command is not None:  # retried between iterations, before a resync reads the venue
        obey_commands(rt)
        with rt.db() as db:
            row = db.get(Command, queued)
            assert row is not None and row.status == "done", row.result
    step(rt, 2)
    assert venue.fetch_open_orders(SYMBOL) == [], "a sell taken earlier still rests"
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0, abs=1e-9)
    assert venue.balances["TST"][0] == pytest.approx(1.0), "the other bot's coins were sold"
