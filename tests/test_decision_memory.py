"""The decide step's memory of its traces: a decision made once per clock, the cost cap exact.

The runtime skips the recorded-decision lookup at clocks later than every trace, and keeps
the session's trace cost instead of summing it at each decision. Both must hold across a
restart, which builds a new runtime (and memory) from the database alone.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.steps.decide import decide_and_execute
from bot.steps.market_data import fetch_market_data
from db.models import LLMTrace, SessionStatsCache
from db.models import Session as TradingSession
from tests.conftest import candle_file
from tests.loop_harness import CostlyEngine, ScriptedEngine, make_runtime, step


def traces(rt) -> int:
    with rt.db() as db:
        return db.scalar(select(func.count(LLMTrace.id))) or 0


def test_a_restarted_runtime_does_not_decide_again_at_a_traced_clock(sqlite_url) -> None:
    btc = [candle_file("BTC_USDT-5m.csv")]
    first = ScriptedEngine([])
    rt = make_runtime(sqlite_url, btc, first)
    step(rt, 2)
    fetch_market_data(rt)
    decide_and_execute(rt)  # the clock does not move: as if killed before it could
    assert len(first.contexts) == 3 and traces(rt) == 3
    decide_and_execute(rt)  # the same runtime at the same clock
    assert len(first.contexts) == 3 and traces(rt) == 3

    second = ScriptedEngine([])
    restarted = make_runtime(sqlite_url, btc, second)
    assert restarted.now() == rt.now()
    decide_and_execute(restarted)
    assert second.contexts == [] and traces(restarted) == 3
    restarted.venue.advance()
    step(restarted)  # a later clock is decided as usual
    assert len(second.contexts) == 1 and traces(restarted) == 4


def test_the_cost_cap_sees_every_traced_cost_despite_a_stale_cache(sqlite_url) -> None:
    """The context's LLM cost counts the traces even when the cached figures lag behind."""
    btc = [candle_file("BTC_USDT-5m.csv")]
    engine = CostlyEngine([])
    rt = make_runtime(sqlite_url, btc, engine, LLM_SESSION_COST_CAP=100)
    step(rt, 2)

    def forget_costs() -> None:
        with rt.db() as db:
            db.execute(update(SessionStatsCache).values(total_llm_cost=0.0))
            db.execute(update(TradingSession).values(total_llm_cost=0.0))
            db.commit()

    forget_costs()
    step(rt)
    assert engine.contexts[-1].stats["total_llm_cost"] == 2.0

    forget_costs()
    again = CostlyEngine([])
    restarted = make_runtime(sqlite_url, btc, again, LLM_SESSION_COST_CAP=100)
    step(restarted)
    assert again.contexts[-1].stats["total_llm_cost"] == 3.0
