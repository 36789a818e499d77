"""An entry's stop must lie below the price it fills at, not only below its limit.

A limit BUY above the market (115 on a market at 100) is marketable: it fills at once at the
ask. Its stop at 105 was checked against the limit price alone and passed, so the plan
bought at 100 and was stopped out at once "at 105" (sold at 100): a stop above the entry,
paid for with a round trip's fees and spread. The real ``openai`` SDK reads the recorded
body; the loop, the paper venue and the store are real.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import LLMTrace, Trade, TradePlan
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.test_llm_exits import _llm_answering
from tests.test_plans import LOOSE, SYMBOL


@pytest.mark.parametrize("order", [
    {"order_type": "limit", "price": 115.0},  # marketable: fills at the ask, about 100
    {"order_type": "market"},
])
def test_an_entry_whose_stop_is_above_the_market_is_rejected(sqlite_url, tmp_path,
                                                            order) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), **LOOSE)
    step(rt, 1)
    rt.engine, recorded = _llm_answering({"action": "BUY", "symbol": SYMBOL, "size": 1.0,
                                          "stop": 105.0, "target": 130.0, **order})
    step(rt, 3)
    assert len(recorded.requests) == 1
    with rt.db() as db:
        assert db.scalars(select(Trade)).all() == []
        assert db.scalars(select(TradePlan)).all() == []
        result = db.scalars(select(LLMTrace.execution_result)
                            .where(LLMTrace.engine == "openai")).one()
    assert "stop 105.0 must be below" in result, result


def test_a_limit_entry_below_the_market_keeps_its_stop_below_its_limit(sqlite_url,
                                                                      tmp_path) -> None:
    """A resting limit (95 on a market at 100) fills at its price: its stop is judged
    against the limit, so a stop at 97 (below the market, above the limit) is rejected."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), **LOOSE)
    step(rt, 1)
    rt.engine, _ = _llm_answering({"action": "BUY", "symbol": SYMBOL, "size": 1.0,
                                   "order_type": "limit", "price": 95.0, "stop": 97.0,
                                   "target": 130.0})
    step(rt, 1)
    with rt.db() as db:
        assert db.scalars(select(TradePlan)).all() == []
        result = db.scalars(select(LLMTrace.execution_result)
                            .where(LLMTrace.engine == "openai")).one()
    assert "stop 97.0 must be below the price 95.0" in result, result
