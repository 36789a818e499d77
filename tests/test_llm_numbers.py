"""A boolean or a string where the decision wants a number is bad output: rejected, never
traded.

A local model in JSON mode (no schema enforced) answers ``"plan_id": true`` and
``"size": true``; read as 1, they would close plan 1 and buy 1 BTC, neither of which the
model named. A model writing ``"size": "0.01"`` wrote text, not a number: the schema takes
numbers strictly. The real SDKs read recorded bodies; the actions are dropped with their
fields and what was wrong with them named on the trace's errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from bot.engine.base import EngineResult
from bot.engine.schema import ActionType
from tests import test_anthropic_engine, test_gemini_engine
from tests.recorded_http import RecordedAnswers, fixture_json
from tests.test_gemini_engine import Recorder, context
from tests.test_openai_engine import answers, make_engine

# the recorded BUY of each provider's decision.json, its figures written as strings
STRING_FIGURES = {"action": "BUY", "symbol": "BTC/USDT", "quote_value": "500",
                  "order_type": "market", "stop": "21700", "target": 22300,
                  "reason": "EMA trend up", "confidence": 0.6}
STRINGS_REJECTED = ('action 0: invalid quote_value, stop (quote_value is "500", a string, '
                    'not a number; stop is "21700", a string, not a number)')


def test_booleans_for_a_plan_id_and_a_size_are_rejected_and_traced() -> None:
    recorded = answers("ollama_booleans.json")
    engine = make_engine(recorded, LLM_MODEL="qwen2.5:7b",
                         LLM_BASE_URL="http://127.0.0.1:11434/v1")
    result = engine.decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD], \
        result.decision.actions
    assert result.errors == ["action 0: invalid plan_id (plan_id is true, a boolean, not a number)",
                             "action 1: invalid size (size is true, a boolean, not a number)"]


def _openai(decision: dict[str, Any]) -> EngineResult:
    recorded = fixture_json("openai", "decision.json")
    recorded["choices"][0]["message"]["content"] = json.dumps(decision)
    return make_engine(RecordedAnswers((200, json.dumps(recorded).encode()))).decide(context())


def _anthropic(decision: dict[str, Any]) -> EngineResult:
    recorded = fixture_json("anthropic", "decision.json")
    recorded["content"][0]["input"] = decision  # the decide tool's input
    served = RecordedAnswers((200, json.dumps(recorded).encode()), http=httpx2)
    return test_anthropic_engine.make_engine(served).decide(context())


def _gemini(decision: dict[str, Any]) -> EngineResult:
    recorded = test_gemini_engine.body("decision.json")
    recorded["candidates"][0]["content"]["parts"][0]["text"] = json.dumps(decision)
    # a model that takes the schema beside the tools answers once (2.5 would be asked again)
    return test_gemini_engine.make_engine(Recorder((200, recorded)),
                                          LLM_MODEL="gemini-3-pro-preview").decide(context())


PROVIDERS = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_numbers_given_as_strings_are_rejected_and_traced(provider: str) -> None:
    decide: Callable[[dict[str, Any]], EngineResult] = PROVIDERS[provider]
    result = decide({"actions": [STRING_FIGURES], "summary": "in"})
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD], \
        result.decision.actions
    assert result.errors == [STRINGS_REJECTED]
    assert result.answers[-1]["errors"] == [STRINGS_REJECTED]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_same_decision_with_numbers_is_taken(provider: str) -> None:
    """The control: the recorded BUY with its figures as numbers parses whole."""
    numbers = STRING_FIGURES | {"quote_value": 500, "stop": 21700}
    result = PROVIDERS[provider]({"actions": [numbers], "summary": "in"})
    (action,) = result.decision.actions
    assert result.errors == [] and action.action is ActionType.BUY
    assert (action.quote_value, action.stop) == (500, 21700)
