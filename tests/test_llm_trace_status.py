"""A trace is "rejected" only when something was refused, never for a note on how the
decision was asked.

A prompt cut to fit the budget, an attempt retried that a later one answered, and an
endpoint's refused feature the adapter worked around are all named on the trace, and the
decision they came to is carried out: the trace says "ok". The real ``openai`` SDK reads the
recorded bodies; the loop, the paper venue and the store are real.
"""

from __future__ import annotations

import json

import openai
import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.engine.llm import LLMEngine
from bot.engine.openai_chat import OpenAIChatAdapter
from db.models import LLMTrace
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.recorded_http import RecordedAnswers, fixture, fixture_json
from tests.test_plans import LOOSE, SYMBOL

BUY = {"action": "BUY", "symbol": SYMBOL, "size": 1.0, "stop": 90.0, "target": 120.0,
       "reason": "breakout", "confidence": 0.6}


def _refused(message: str, **extra: str) -> tuple[int, bytes]:
    return 400, json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                      **extra}}).encode()


def _buying() -> tuple[int, bytes]:
    body = fixture_json("openai", "decision.json")
    body["choices"][0]["message"]["content"] = json.dumps({"actions": [BUY],
                                                           "summary": "in"})
    return 200, json.dumps(body).encode()


def _engine(answers: list[tuple[int, bytes]], **overrides: object) -> LLMEngine:
    recorded = RecordedAnswers(*answers)
    settings = load_settings(**{"LLM_PROVIDER": "openai", "LLM_API_KEY": "sk-test-key-123",
                                "LLM_MIN_INTERVAL_SECONDS": 3600, "SYMBOLS": SYMBOL,
                                **overrides})
    client = openai.OpenAI(api_key="sk-test-key-123", base_url=settings.llm_base_url,
                           max_retries=0, http_client=recorded.client())
    return LLMEngine(settings, OpenAIChatAdapter(settings, client), sleep=lambda _s: None)


TOOLS_REFUSED = _refused("registry.ollama.ai/library/gemma3:4b does not support tools")
SCHEMA_REFUSED = _refused("response_format json_schema is not supported")
TEMPERATURE_REFUSED = _refused("Unsupported value: 'temperature' does not support 0.2 with "
                               "this model. Only the default (1) value is supported.",
                               param="temperature")


@pytest.mark.parametrize(("answers", "overrides", "notes"), [
    ([_buying()], {"PROMPT_TOKEN_BUDGET": 201}, ["prompt cut to fit the budget: "]),
    ([(429, fixture("openai", "rate_limited.json")), _buying()], {},
     ["attempt 1: HTTP 429, retrying"]),
    ([TOOLS_REFUSED, SCHEMA_REFUSED, _buying()], {"LLM_BASE_URL": "http://localhost:11434/v1"},
     ["the endpoint refuses tools: deciding without them",
      "the endpoint refuses a JSON schema: JSON mode"]),
    ([TEMPERATURE_REFUSED, _buying()], {"LLM_MODEL": "o4-mini"},
     ["the model refuses a temperature: sending none"]),
], ids=["prompt-cut", "retried", "tools-and-schema-refused", "temperature-refused"])
def test_a_decision_carried_out_after_a_note_is_traced_ok(sqlite_url, tmp_path, answers,
                                                          overrides, notes) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), **LOOSE)
    step(rt, 1)
    rt.engine = _engine(answers, **overrides)
    step(rt, 2)  # the fill is booked at the next step; the engine is not asked again
    with rt.db() as db:
        trace = db.scalars(select(LLMTrace).where(LLMTrace.engine == "openai")).one()
    assert rt.book.quantity(SYMBOL) == pytest.approx(1.0)  # the decision was carried out
    assert trace.status == "ok"
    assert len(trace.errors) == len(notes)
    assert all(error.startswith(note) for error, note in zip(trace.errors, notes, strict=True))


def test_a_refused_answer_is_still_rejected(sqlite_url, tmp_path) -> None:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), **LOOSE)
    step(rt, 1)
    rt.engine = _engine([(200, fixture("openai", "refusal.json"))])
    step(rt, 1)
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0, abs=1e-9)
    with rt.db() as db:
        trace = db.scalars(select(LLMTrace).where(LLMTrace.engine == "openai")).one()
    assert trace.status == "rejected" and trace.errors[0].startswith("refused: ")
