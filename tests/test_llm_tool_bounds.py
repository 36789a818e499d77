"""A model that asks for tools without end is answered a bounded number of times.

Every answer goes back with the next request, and is paid for as its input tokens: 40
calls of an indicator table in one reply sent about 40 x 8 KB twice more (rounds two and
three) in one decision, which no cost cap stops (the cap is checked before a decision).
The real ``openai`` SDK reads the recorded bodies.
"""

from __future__ import annotations

import json

from bot.engine.schema import ActionType
from tests.recorded_http import RecordedAnswers, fixture, fixture_json
from tests.test_gemini_engine import context
from tests.test_openai_engine import make_engine

CALLS = 40
BOUND = 8  # tool answers with data per decision (``bot.engine.llm.BOUND``)


def _many_calls() -> bytes:
    body = fixture_json("openai", "tool_call.json")
    message = body["choices"][0]["message"]
    message["tool_calls"] = [
        {"id": f"call_{k}", "type": "function",
         "function": {"name": "get_indicators",
                      "arguments": json.dumps({"symbol": "BTC/USDT", "timeframe": "5m"})}}
        for k in range(CALLS)]
    return json.dumps(body).encode()


def test_tool_calls_beyond_the_bound_are_answered_with_an_error_not_data() -> None:
    recorded = RecordedAnswers((200, _many_calls()), (200, fixture("openai", "hold.json")))
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    _, second = recorded.requests
    answered = [json.loads(m["content"]) for m in second["messages"] if m["role"] == "tool"]
    assert len(answered) == CALLS  # every call gets its answer, as the API requires
    with_data = [a for a in answered if "rows" in a]
    assert len(with_data) == BOUND
    assert all("error" in a for a in answered if "rows" not in a)
    refused = [c for c in result.tool_calls if "error" in c["result"]]
    assert len(refused) == CALLS - BOUND
    assert "at most" in refused[0]["result"]["error"]
