"""Every risk rule refuses an entry on the real paper venue, named on the decision's trace.

Each case sets one cap (or one condition) so that exactly that rule is the first to break;
the refusal must reach ``llm_traces.execution_result`` with the rule's name, and no order
may be sent. Exits are never refused by an entry rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.model.round_trip import (
    book_slippage_pct,
    min_target_distance_pct,
    round_trip_cost_pct,
    spread_pct,
)
from bot.risk import Rule
from bot.runtime import Runtime
from bot.steps.decide import decide_and_execute
from bot.steps.market_data import fetch_market_data
from bot.venue.base import TransientVenueError
from db.models import Command, LLMTrace, Order, Trade, TradePlan
from tests.conftest import candle_file
from tests.loop_harness import CostlyEngine, ScriptedEngine, make_runtime, step

BTC = "BTC/USDT"
HOLD = Decision()


def buy(size: float = 0.05, symbol: str = BTC, price: float | None = None) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=symbol, size=size,
                                    order_type="limit" if price else "market", price=price,
                                    reason="risk test")])


def last_outcome(rt: Runtime) -> dict:
    with rt.db() as db:
        trace = db.scalars(select(LLMTrace).where(LLMTrace.execution_result.is_not(None))
                           .order_by(LLMTrace.id.desc())).first()
    assert trace is not None
    return json.loads(trace.execution_result)["actions"][-1]


def entries(rt: Runtime) -> int:
    with rt.db() as db:
        return len(list(db.scalars(select(Order).where(Order.purpose == "entry"))))


def _decide_after(setup: Callable[[Runtime], None]) -> Callable[[Runtime], None]:
    """Fetch market data, apply ``setup``, then run the decide step by itself.

    The loop skips the decide step while paused; the rule behind it must still hold if
    anything ever calls the step, so the paused case drives the step directly.
    """

    def run(rt: Runtime) -> None:
        fetch_market_data(rt)
        setup(rt)
        decide_and_execute(rt)

    return run


def _ticker_fails_on_second_iteration(rt: Runtime) -> None:
    step(rt)  # a good quote, then the venue stops answering for the ticker
    real = rt.venue.fetch_ticker

    def fetch_ticker(symbol: str):
        raise TransientVenueError(f"ticker for {symbol} timed out")

    rt.venue.fetch_ticker = fetch_ticker  # type: ignore[method-assign]
    from bot.loop import run_iteration

    run_iteration(rt)
    rt.venue.fetch_ticker = real  # type: ignore[method-assign]


def _book_fails(rt: Runtime) -> None:
    step(rt)  # a good quote first, so the decision itself is valid

    def fetch_order_book(symbol: str, limit: int | None = None):
        raise TransientVenueError("order book timed out")

    rt.venue.fetch_order_book = fetch_order_book  # type: ignore[method-assign]
    from bot.loop import run_iteration

    run_iteration(rt)


@dataclass(frozen=True)
class Case:
    """Settings and decisions under which ``rule`` is the first to refuse an entry."""

    settings: dict
    decisions: list[Decision]
    run: Callable[[Runtime], None] = step  # how to get to the refused entry
    engine: type = ScriptedEngine
    files: tuple[str, ...] = ("BTC_USDT-5m.csv",)
    entries: int = 0  # entries sent before the refused one


CASES: dict[Rule, Case] = {
    Rule.PAUSED: Case({}, [buy()], _decide_after(lambda rt: setattr(rt, "paused", True))),
    Rule.CIRCUIT_BREAKER: Case({"CIRCUIT_BREAKER_ERRORS": 1}, [HOLD, buy()], _book_fails),
    # A limit entry carries its own price, so only the missing quote stops it.
    Rule.NO_MARKET_DATA: Case({}, [buy(price=16_700.0)],
                              _decide_after(lambda rt: rt.quotes.clear())),
    Rule.LLM_COST_CAP: Case({"LLM_SESSION_COST_CAP": 0.5}, [buy()], engine=CostlyEngine),
    Rule.MIN_NOTIONAL: Case({}, [buy(size=0.0001)]),
    Rule.MAX_ORDER_VALUE: Case({}, [buy(size=0.1)]),
    Rule.AVAILABLE_CAPITAL: Case({"AVAILABLE_CAPITAL": 500}, [buy()]),
    Rule.MAX_TOTAL_EXPOSURE: Case({"MAX_TOTAL_EXPOSURE": 100}, [buy()]),
    Rule.MAX_DAILY_LOSS: Case({"LLM_SESSION_COST_CAP": 0, "MAX_DAILY_LOSS": 0.5}, [buy()],
                              engine=CostlyEngine),
    Rule.MAX_DAILY_LOSS_PCT: Case({"LLM_SESSION_COST_CAP": 0, "MAX_DAILY_LOSS": 1e6,
                                   "MAX_DAILY_LOSS_PCT": 0.001}, [buy()], engine=CostlyEngine),
    Rule.MAX_OPEN_POSITIONS: Case({"MAX_OPEN_POSITIONS": 1, "MIN_NOTIONAL": 0.001,
                                   "MAX_SPREAD_PCT": 5, "MAX_SLIPPAGE_PCT": 5},
                                  [buy(1.0, "ETH/BTC"), buy(1.0, "LTC/BTC")],
                                  lambda rt: step(rt, 2),
                                  files=("ETH_BTC-5m.csv", "LTC_BTC-5m.csv"), entries=1),
    Rule.PLAN_MAX_PER_SYMBOL: Case({}, [buy(), buy()], lambda rt: step(rt, 2), entries=1),
    Rule.STALE_TICKER: Case({"STALE_TICKER_SECONDS": 60}, [HOLD, buy()],
                            _ticker_fails_on_second_iteration),
    Rule.MAX_SPREAD_PCT: Case({"MAX_SPREAD_PCT": 0.00001}, [buy()]),
    Rule.MAX_SLIPPAGE_PCT: Case({"MAX_SLIPPAGE_PCT": 0.0000001, "MAX_ORDER_VALUE": 1e9,
                                 "MAX_TOTAL_EXPOSURE": 1e9}, [buy(size=100)]),
    # no target: the plan's default (4% above the entry) is held to the rule
    Rule.MIN_TARGET_FEE_MULTIPLE: Case({"MIN_TARGET_FEE_MULTIPLE": 25}, [buy()]),
}


@pytest.mark.parametrize("rule", list(Rule))
def test_each_rule_refuses_an_entry_and_is_named_on_the_trace(sqlite_url, rule: Rule) -> None:
    """Every rule the risk layer declares has a case here, run to see that very rule refuse.

    The rules come from ``bot.risk.Rule``, the names ``check_entry`` refuses with: a rule
    added there without a case fails here.
    """
    case = CASES.get(rule)
    assert case is not None, f"no case triggers the risk rule {rule!r}: add one to CASES"
    rt = make_runtime(sqlite_url, [candle_file(name) for name in case.files],
                      case.engine(case.decisions), **case.settings)
    case.run(rt)
    outcome = last_outcome(rt)
    assert outcome["status"] == "refused" and outcome["rule"] == rule, outcome
    assert entries(rt) == case.entries


def test_exits_pass_while_entry_rules_refuse(sqlite_url) -> None:
    """With the breaker open, a new entry is refused but closing a plan still sells."""
    close = Decision(actions=[
        Action(action=ActionType.BUY, symbol=BTC, size=0.05, reason="refused"),
        Action(action=ActionType.CLOSE_PLAN, plan_id=1, reason="engine closes"),
    ])
    engine = ScriptedEngine([buy(), HOLD, close])
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], engine,
                      CIRCUIT_BREAKER_ERRORS=1, MAX_DAILY_LOSS=0.01)
    step(rt, 2)  # entered and booked; fees alone now exceed MAX_DAILY_LOSS
    assert rt.book.quantity(BTC) == pytest.approx(0.05)
    rt.breaker.record_error(rt.now())
    step(rt, 2)
    with rt.db() as db:
        traces = list(db.scalars(select(LLMTrace).order_by(LLMTrace.id)))
        outcomes = json.loads(traces[2].execution_result)["actions"]  # the third decision
        sold = db.scalars(select(Trade).where(Trade.action == "SELL")).one()
    assert outcomes[0]["rule"] == "circuit_breaker", outcomes
    assert outcomes[1]["status"] == "exiting"
    assert sold.quantity == pytest.approx(0.05) and rt.book.quantity(BTC) == 0


def test_a_sell_above_a_lowered_max_order_value_is_not_refused(sqlite_url) -> None:
    """A position bought under a higher cap is sold whole after the cap is lowered below it:
    no check (the sanity bound on order values included) refuses a risk-reducing order."""
    sell = Decision(actions=[Action(action=ActionType.SELL, symbol=BTC, reason="take it off")])
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")],
                      ScriptedEngine([buy(), HOLD, sell]))
    step(rt, 2)
    assert rt.book.quantity(BTC) == pytest.approx(0.05)  # some 836 USDT
    rt.settings = rt.settings.model_copy(update={"max_order_value": 50.0})
    step(rt, 2)
    with rt.db() as db:
        traces = list(db.scalars(select(LLMTrace).order_by(LLMTrace.id)))
        outcome = json.loads(traces[2].execution_result)["actions"][0]  # the SELL's
        sold = db.scalars(select(Trade).where(Trade.action == "SELL")).one_or_none()
    assert outcome["status"] == "exiting", outcome
    assert sold is not None and sold.quantity == pytest.approx(0.05) and rt.book.quantity(BTC) == 0


@pytest.mark.parametrize("engine", ["rules", "quote_value"])
def test_an_entry_sized_at_max_order_value_is_not_refused_by_it(sqlite_url, engine) -> None:
    """Sizing and the risk check value an entry at one reference price: an entry of exactly
    MAX_ORDER_VALUE (the rules engine's 5% of 20,000; an LLM's quote_value) is placed."""
    at_cap = Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, quote_value=1000.0,
                                      reason="at the cap")])
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")],
                      None if engine == "rules" else ScriptedEngine([at_cap]),
                      STARTING_BALANCE=20_000)
    step(rt)  # the rules engine has its entry signal on this file's first decision
    outcome = last_outcome(rt)
    assert outcome["action"] == "BUY" and outcome["status"] == "placed", outcome
    with rt.db() as db:
        order = db.scalars(select(Order).where(Order.purpose == "entry")).one()
        value = order.amount * rt.quotes[BTC].ask
    assert 999.0 < value <= 1000.0


def test_an_entry_at_the_cap_is_not_refused_when_the_price_moved_while_deciding(
        sqlite_url) -> None:
    """An LLM answers seconds after it was shown the market: an entry it sized at exactly
    MAX_ORDER_VALUE at the ask it saw is valued at the ask of the moment it is sent. A move
    of a fraction of a percent meanwhile shrinks it to the cap, it is not refused by it."""
    at_cap = Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, quote_value=1000.0,
                                      reason="at the cap")])

    class SlowEngine(ScriptedEngine):
        def decide(self, context):
            quote = rt.quotes[BTC]
            quote.ask = quote.ask * 1.002  # the market moved while the model thought
            return super().decide(context)

    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], SlowEngine([at_cap]),
                      STARTING_BALANCE=20_000)
    step(rt)
    outcome = last_outcome(rt)
    assert outcome["status"] == "placed", outcome
    with rt.db() as db:
        order = db.scalars(select(Order).where(Order.purpose == "entry")).one()
    assert 999.0 < order.amount * rt.quotes[BTC].ask <= 1000.0 * (1 + 1e-9)


class TargetAbove(ScriptedEngine):
    """Enters first with a target ``gain`` above the ask it is shown, then follows its
    script."""

    def __init__(self, gain: float) -> None:
        super().__init__([])
        self.gain = gain

    def decide(self, context):
        if not self.contexts:
            ask = context.markets[BTC].ask
            assert ask is not None
            self.decisions.insert(0, Decision(actions=[Action(
                action=ActionType.BUY, symbol=BTC, size=0.05, stop=ask * 0.98,
                target=ask * (1 + self.gain), reason="target test")]))
        return super().decide(context)


def test_an_entry_whose_target_cannot_pay_its_round_trip_is_refused(sqlite_url) -> None:
    """A target 0.3% above the entry pays the 0.2% round trip's fees once, not the default
    multiple of them with the book's slippage: refused, named, with the figures; no order."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], TargetAbove(0.003))
    step(rt)
    outcome = last_outcome(rt)
    assert outcome["status"] == "refused", outcome
    assert outcome["rule"] == "min_target_fee_multiple", outcome
    assert "0.300%" in outcome["detail"] and "fees 0.200%" in outcome["detail"], outcome
    assert entries(rt) == 0


@pytest.mark.parametrize(("gain", "multiple"), [(0.003, 0), (0.02, None)])
def test_an_entry_whose_target_pays_its_costs_or_with_the_rule_off_is_placed(
        sqlite_url, gain: float, multiple: float | None) -> None:
    """The same tight target goes when MIN_TARGET_FEE_MULTIPLE=0 switches the rule off, and a
    target 2% away passes it at its default."""
    settings = {} if multiple is None else {"MIN_TARGET_FEE_MULTIPLE": multiple}
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], TargetAbove(gain),
                      **settings)
    step(rt)
    assert last_outcome(rt)["status"] == "placed"
    assert entries(rt) == 1


def test_stops_exits_and_close_all_pass_while_the_fee_rule_refuses_every_entry(
        sqlite_url) -> None:
    """With MIN_TARGET_FEE_MULTIPLE raised so that no target can pay, entries are refused by
    it while a partial sell, a hit stop and a close-all still trade: no check refuses an
    order that reduces risk."""
    from bot.steps.commands import obey_commands
    from db.commands import enqueue_command

    sell_part = Decision(actions=[
        Action(action=ActionType.BUY, symbol=BTC, size=0.05, reason="refused"),
        Action(action=ActionType.SELL, symbol=BTC, size=0.02, reason="take some off")])
    engine = TargetAbove(0.02)
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], engine,
                      PLAN_MAX_PER_SYMBOL=5, TRAIL_BREAKEVEN_PCT=0)
    step(rt, 2)
    assert rt.book.quantity(BTC) == pytest.approx(0.05)
    rt.settings = rt.settings.model_copy(update={"min_target_fee_multiple": 1e6})
    engine.decisions = [sell_part]  # its entry (default target) is refused by the rule now
    step(rt, 2)
    assert rt.book.quantity(BTC) == pytest.approx(0.03)
    # a stop 0.01% under the price: the candles soon trade through it
    engine.decisions = [Decision(actions=[Action(
        action=ActionType.UPDATE_PLAN, plan_id=1, stop=rt.quotes[BTC].last * 0.9999,
        reason="tighten")])]
    for _ in range(200):  # the stop's exit, whatever the candle that trades through it
        step(rt)
        if rt.book.quantity(BTC) == 0:
            break
    with rt.db() as db:
        traces = list(db.scalars(select(LLMTrace).order_by(LLMTrace.id)))
        outcomes = [o for t in traces[2:] if t.execution_result
                    for o in json.loads(t.execution_result)["actions"]]
        plan = db.scalars(select(TradePlan)).first()
    refused = {o.get("rule") for o in outcomes if o["action"] == "BUY"}
    assert refused == {"min_target_fee_multiple"}, outcomes
    assert any(o["action"] == "SELL" and o["status"] == "exiting" for o in outcomes), outcomes
    assert rt.book.quantity(BTC) == 0 and plan is not None
    assert plan.exit_reason is not None and plan.exit_reason.startswith("stop"), plan.exit_reason
    assert entries(rt) == 1
    # a position the rule would not let in now (bought with the rule off), closed by command
    rt.settings = rt.settings.model_copy(update={"min_target_fee_multiple": 0.0})
    engine.decisions = [buy()]
    step(rt, 2)
    assert rt.book.quantity(BTC) == pytest.approx(0.05)
    rt.settings = rt.settings.model_copy(update={"min_target_fee_multiple": 1e6})
    with rt.db() as db:
        close_all = enqueue_command(db, "close-all")
    obey_commands(rt)
    step(rt)
    with rt.db() as db:
        status = db.get(Command, close_all).status
    assert status == "done" and rt.book.quantity(BTC) == 0


def test_an_entry_larger_than_the_book_is_refused_saying_what_the_book_holds(
        sqlite_url) -> None:
    """A BTC-quoted pair started with 10,000 (read as BTC) sizes entries beyond the whole
    book: the refusal says how much of the amount wanted the book holds within the cap,
    in words, rather than a walk that 'costs inf%'."""
    want = Decision(actions=[Action(action=ActionType.BUY, symbol="ETH/BTC", quote_value=500.0,
                                    reason="5% of 10,000 BTC")])
    rt = make_runtime(sqlite_url, [candle_file("ETH_BTC-5m.csv")], ScriptedEngine([want]),
                      MAX_ORDER_VALUE=1000)
    step(rt)
    outcome = last_outcome(rt)
    assert outcome["status"] == "refused" and outcome["rule"] == Rule.MAX_SLIPPAGE_PCT, outcome
    assert "inf" not in outcome["detail"], outcome
    found = re.fullmatch(r"the book holds ([\d.e+-]+) ETH of the ([\d.e+-]+) ETH wanted within "
                         r"the 0.5% slippage cap", outcome["detail"])
    assert found is not None, outcome["detail"]
    holds, wanted = float(found[1]), float(found[2])
    assert 0 < holds < wanted == pytest.approx(500.0 / rt.quotes["ETH/BTC"].ask, rel=1e-5)
    book = rt.quotes["ETH/BTC"].book
    assert book_slippage_pct(book, "BUY", holds * 0.999) <= 0.5 < book_slippage_pct(
        book, "BUY", holds * 1.01)
    assert entries(rt) == 0


@pytest.mark.parametrize("multiple", [3, 8])
def test_the_rules_engine_sets_targets_its_entries_pass(sqlite_url, multiple: float) -> None:
    """The rules engine's target lies beyond MIN_TARGET_FEE_MULTIPLE round trips' costs on
    the very market the risk layer checks (its entry signal is on this file's first
    decision), so its entry is placed, even when the multiple asks for more than its ATR."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")],
                      MIN_TARGET_FEE_MULTIPLE=multiple)
    step(rt)
    outcome = last_outcome(rt)
    assert outcome["action"] == "BUY" and outcome["status"] == "placed", outcome
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
    fees_pct = 2 * rt.settings.taker_fee * 100
    assert (plan.target_price / plan.entry_price - 1) * 100 > multiple * fees_pct


def test_the_rules_engines_entry_passes_on_a_book_its_size_walks(sqlite_url) -> None:
    """An entry of 1,000,000 USDT (5% of 20M) walks the paper book well past its best
    level: the engine aims past that walk's cost, as the risk layer charges it, so its
    entry is placed and not refused by MIN_TARGET_FEE_MULTIPLE."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], STARTING_BALANCE=20_000_000,
                      MAX_ORDER_VALUE=1e9, MAX_TOTAL_EXPOSURE=1e10, MAX_SLIPPAGE_PCT=5)
    step(rt)
    outcome = last_outcome(rt)
    assert outcome["action"] == "BUY" and outcome["status"] == "placed", outcome
    quote = rt.quotes[BTC]
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
    walk = book_slippage_pct(quote.book, "BUY", plan.size) or 0.0
    assert walk > (spread_pct(quote.bid, quote.ask) or 0)  # thin: the walk in costs more
    # than the whole spread
    need = min_target_distance_pct(3, rt.settings.taker_fee,
                                   round_trip_cost_pct(quote.bid, quote.ask, quote.book, plan.size))
    assert (plan.target_price / quote.ask - 1) * 100 >= need


def test_the_fee_rule_charges_the_spread_once_from_an_entry_at_the_ask() -> None:
    """An entry at the ask has paid half the spread already: the rule charges the exit's
    half, not the whole spread again. Spread 0.2% and fees 0.2% on a deep book: a target
    1% above the ask lies beyond 3 x (0.2% + 0.1%) = 0.9%, and one 0.85% above does not."""
    from datetime import UTC, datetime

    from bot.config import load_settings
    from bot.model.quote import Quote
    from bot.risk import RiskState, check_entry

    now = datetime(2026, 1, 1, tzinfo=UTC)
    settings = load_settings(MAX_SPREAD_PCT=1)
    state = RiskState(now=now, equity=10_000, start_of_day_equity=10_000, session_net_pnl=0,
                      llm_cost=0, exposure_by_symbol={}, active_plans_by_symbol={},
                      breaker_open=False, paused=False)
    deep = {"bids": [[99.9, 1e6]], "asks": [[100.1, 1e6]]}
    quote = Quote(last=100.0, bid=99.9, ask=100.1, timestamp=now, book=deep,
                  low_since_check=100.0, high_since_check=100.0)
    assert check_entry(settings, state, BTC, "BUY", 1.0, 100.1, 100.1 * 1.01, quote) is None
    refusal = check_entry(settings, state, BTC, "BUY", 1.0, 100.1, 100.1 * 1.0085, quote)
    assert refusal is not None and refusal.rule is Rule.MIN_TARGET_FEE_MULTIPLE
    assert refusal.detail.endswith("= 0.900%"), refusal.detail
