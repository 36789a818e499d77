"""A boolean where the decision wants a number is bad output: rejected, never traded.

A local model in JSON mode (no schema enforced) answers ``"plan_id": true`` and
``"size": true``; read as 1, they would close plan 1 and buy 1 BTC, neither of which the
model named. The real ``openai`` SDK reads the recorded Ollama body; the actions are
dropped with their fields named on the trace's errors.
"""

from __future__ import annotations

from bot.engine.schema import ActionType
from tests.test_gemini_engine import context
from tests.test_openai_engine import answers, make_engine


def test_booleans_for_a_plan_id_and_a_size_are_rejected_and_traced() -> None:
    recorded = answers("ollama_booleans.json")
    engine = make_engine(recorded, LLM_MODEL="qwen2.5:7b",
                         LLM_BASE_URL="http://127.0.0.1:11434/v1")
    result = engine.decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD], \
        result.decision.actions
    assert result.errors == ["action 0: invalid plan_id", "action 1: invalid size"]
