"""An exit the LLM decides is carried out even when a field nothing trades on is off.

Spot exits are never refused: a model that closes a plan or sells with a confidence of
85 (a percent, where the schema wants 0 to 1) still gets out of the position; the
confidence is dropped and the trace says so. An entry with the same slip is still
rejected: bad output buys nothing. The real ``openai`` SDK reads the recorded body; the
loop, the paper venue and the store are real.
"""

from __future__ import annotations

import json

import openai
import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.engine.llm import LLMEngine
from bot.engine.openai_chat import OpenAIChatAdapter
from db.models import LLMTrace, Trade, TradePlan
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.recorded_http import RecordedAnswers, fixture_json
from tests.test_plans import LOOSE, SYMBOL, entry


def _llm_answering(*actions: dict) -> tuple[LLMEngine, RecordedAnswers]:
    """The openai engine, its one answer the decision of ``actions`` (asked once: the
    next hour's calls are skipped)."""
    body = fixture_json("openai", "decision.json")
    body["choices"][0]["message"]["content"] = json.dumps(
        {"actions": list(actions), "summary": "done here"})
    recorded = RecordedAnswers((200, json.dumps(body).encode()))
    settings = load_settings(LLM_PROVIDER="openai", LLM_API_KEY="sk-test-key-123",
                             LLM_MIN_INTERVAL_SECONDS=3600, SYMBOLS=SYMBOL)
    client = openai.OpenAI(api_key="sk-test-key-123", max_retries=0,
                           http_client=recorded.client())
    engine = LLMEngine(settings, OpenAIChatAdapter(settings, client), tools=False,
                       sleep=lambda _s: None)
    return engine, recorded


@pytest.mark.parametrize("exit_action", [
    {"action": "CLOSE_PLAN", "plan_id": 1, "reason": "take it", "confidence": 85},
    {"action": "SELL", "symbol": SYMBOL, "reason": "take it", "confidence": 85},
])
def test_an_exit_with_a_confidence_out_of_range_still_exits(sqlite_url, tmp_path,
                                                             exit_action) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([entry(stop=90.0, target=120.0)]),
                      **LOOSE)
    step(rt, 2)
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)
    rt.engine, recorded = _llm_answering(exit_action)
    step(rt, 2)
    assert len(recorded.requests) == 1
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
        sold = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
        trace = db.scalars(select(LLMTrace).where(LLMTrace.engine == "openai")).one()
    assert plan.status == "closed" and [t.quantity for t in sold] == [pytest.approx(1.0)]
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0, abs=1e-9)
    # carried out, so not "rejected"; the dropped field is named on the trace
    assert trace.status == "ok"
    assert trace.errors == ["action 0: confidence 85 is not between 0 and 1: dropped"]


def test_an_entry_with_a_confidence_out_of_range_is_rejected(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), **LOOSE)
    step(rt, 1)
    rt.engine, _ = _llm_answering({"action": "BUY", "symbol": SYMBOL, "size": 1.0,
                                   "stop": 90.0, "target": 120.0, "confidence": 85})
    step(rt, 2)
    with rt.db() as db:
        assert db.scalars(select(Trade)).all() == []
        trace = db.scalars(select(LLMTrace).where(LLMTrace.engine == "openai")).one()
    assert trace.status == "rejected" and trace.errors == ["action 0: invalid confidence"]
