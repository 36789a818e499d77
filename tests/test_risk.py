"""Every risk rule refuses an entry on the real paper venue, named on the decision's trace.

Each case sets one cap (or one condition) so that exactly that rule is the first to break;
the refusal must reach ``llm_traces.execution_result`` with the rule's name, and no order
may be sent. Exits are never refused by an entry rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.risk import check_entry
from bot.runtime import Runtime
from bot.steps.decide import decide_and_execute
from bot.steps.market_data import fetch_market_data
from bot.venue.base import TransientVenueError
from db.models import LLMTrace, Order, Trade
from tests.conftest import candle_file
from tests.loop_harness import CostlyEngine, ScriptedEngine, make_runtime, step

BTC = "BTC/USDT"
HOLD = Decision()


def buy(size: float = 0.05, symbol: str = BTC) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=symbol, size=size,
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


CASES: dict[str, tuple[dict, list[Decision], Callable[[Runtime], None] | None, type]] = {
    # rule: (settings, decisions, how to run, engine)
    "paused": ({}, [buy()], _decide_after(lambda rt: setattr(rt, "paused", True)),
               ScriptedEngine),
    "circuit_breaker": ({"CIRCUIT_BREAKER_ERRORS": 1}, [HOLD, buy()], _book_fails,
                        ScriptedEngine),
    "llm_cost_cap": ({"LLM_SESSION_COST_CAP": 0.5}, [buy()], None, CostlyEngine),
    "min_notional": ({}, [buy(size=0.0001)], None, ScriptedEngine),
    "max_order_value": ({}, [buy(size=0.1)], None, ScriptedEngine),
    "max_total_exposure": ({"MAX_TOTAL_EXPOSURE": 100}, [buy()], None, ScriptedEngine),
    "max_daily_loss": ({"LLM_SESSION_COST_CAP": 0, "MAX_DAILY_LOSS": 0.5}, [buy()], None,
                       CostlyEngine),
    "max_daily_loss_pct": ({"LLM_SESSION_COST_CAP": 0, "MAX_DAILY_LOSS": 1e6,
                            "MAX_DAILY_LOSS_PCT": 0.001}, [buy()], None, CostlyEngine),
    "plan_max_per_symbol": ({}, [buy(), buy()], lambda rt: step(rt, 2), ScriptedEngine),
    "stale_ticker": ({"STALE_TICKER_SECONDS": 60}, [HOLD, buy()],
                     _ticker_fails_on_second_iteration, ScriptedEngine),
    "max_spread_pct": ({"MAX_SPREAD_PCT": 0.00001}, [buy()], None, ScriptedEngine),
    "max_slippage_pct": ({"MAX_SLIPPAGE_PCT": 0.0000001, "MAX_ORDER_VALUE": 1e9,
                          "MAX_TOTAL_EXPOSURE": 1e9}, [buy(size=100)], None, ScriptedEngine),
}


@pytest.mark.parametrize("rule", list(CASES))
def test_each_rule_refuses_an_entry_and_is_named_on_the_trace(sqlite_url, rule: str) -> None:
    settings, decisions, run, engine = CASES[rule]
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], engine(decisions),
                      **settings)
    (run or step)(rt)
    outcome = last_outcome(rt)
    assert outcome["status"] == "refused" and outcome["rule"] == rule, outcome
    assert entries(rt) == (1 if rule == "plan_max_per_symbol" else 0)


def test_max_open_positions_refuses_a_second_symbol(sqlite_url) -> None:
    files = [candle_file("ETH_BTC-5m.csv"), candle_file("LTC_BTC-5m.csv")]
    engine = ScriptedEngine([buy(1.0, "ETH/BTC"), buy(1.0, "LTC/BTC")])
    rt = make_runtime(sqlite_url, files, engine, MAX_OPEN_POSITIONS=1, MIN_NOTIONAL=0.001,
                      MAX_SPREAD_PCT=5, MAX_SLIPPAGE_PCT=5)
    step(rt, 2)
    outcome = last_outcome(rt)
    assert outcome["rule"] == "max_open_positions" and outcome["symbol"] == "LTC/BTC"
    assert rt.book.quantity("ETH/BTC") == pytest.approx(1.0)


def test_every_rule_in_the_risk_module_is_covered() -> None:
    """A rule added to check_entry without a case here fails this test."""
    import inspect

    import bot.risk

    source = inspect.getsource(bot.risk)
    named = {rule for rule in (*CASES, "max_open_positions", "no_market_data")
             if f'"{rule}"' in source}
    assert named == {*CASES, "max_open_positions", "no_market_data"}
    assert check_entry is bot.risk.check_entry


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
