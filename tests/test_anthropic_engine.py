"""The Anthropic provider through the real ``anthropic`` SDK against recorded bodies.

The bodies in tests/fixtures/anthropic are Messages API answers, served by an
httpx.MockTransport: the SDK's own request building and response parsing run for real. The
decision is structured output through the ``decide`` tool.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from bot.config import load_settings
from bot.engine.anthropic_messages import AnthropicAdapter
from bot.engine.factory import build_engine
from bot.engine.llm import LLMEngine
from bot.engine.recording import Recording
from bot.engine.schema import ActionType
from bot.engine.tools import DEFAULT_ROWS
from tests import recorded_http
from tests.recorded_http import RecordedAnswers, fixture, fixture_json
from tests.test_gemini_engine import NOW, context

TOOLS = {"get_candles", "get_order_book", "get_indicators"}


def answers(*names: str | tuple[int, str]) -> RecordedAnswers:
    return recorded_http.answers("anthropic", *names, http=httpx2)


def make_engine(recorded: RecordedAnswers, recording: Recording | None = None,
                **overrides: Any) -> LLMEngine:
    settings = load_settings(**{"LLM_PROVIDER": "anthropic", "LLM_API_KEY": "sk-ant-test-123",
                                "LLM_MIN_INTERVAL_SECONDS": 60, **overrides})
    client = anthropic.Anthropic(api_key="sk-ant-test-123", base_url=settings.llm_base_url,
                                 max_retries=0, http_client=recorded.client())
    return LLMEngine(settings, AnthropicAdapter(settings, client), sleep=lambda _s: None,
                     recording=recording)


def usage(*names: str) -> tuple[int, int]:
    return recorded_http.usage("anthropic", names, "input_tokens", "output_tokens")


def test_decision_by_the_decide_tool_is_parsed_priced_and_traced() -> None:
    recorded = answers("decision.json")
    result = make_engine(recorded).decide(context())
    assert result.errors == []
    (action,) = result.decision.actions
    assert action.action is ActionType.BUY and action.quote_value == 500 and action.stop == 21700
    assert (result.tokens_in, result.tokens_out) == usage("decision.json")
    # claude-sonnet-4-5 at genai-prices' $3 in / $15 out per million tokens
    assert result.cost == pytest.approx((2851 * 3 + 142 * 15) / 1e6)
    assert result.provider == "anthropic" and result.model_version == "claude-sonnet-4-5-20250929"
    (request,) = recorded.requests
    assert recorded.urls == ["https://api.anthropic.com/v1/messages"]
    sent = recorded.headers[0]
    assert "sk-ant-test-123" in (sent.get("x-api-key") or sent.get("authorization") or "")
    assert request["system"] and request["max_tokens"] == 4096 and "temperature" not in request
    assert result.temperature is None  # the trace does not claim one that was never sent
    assert {t["name"] for t in request["tools"]} == TOOLS | {"decide"}
    assert request["tool_choice"] == {"type": "any"}
    assert "UPDATE_PLAN" in json.dumps(request["tools"][-1]["input_schema"])


def test_tool_call_then_decision_runs_our_loop() -> None:
    recorded = answers("tool_call.json", "hold.json")
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    (call,) = result.tool_calls
    assert call["name"] == "get_candles" and call["args"]["limit"] == 60
    assert call["result"]["rows"][-1][0] < NOW.isoformat()  # nothing from the future
    _, second = recorded.requests
    assistant, results = second["messages"][1:3]
    assert assistant["role"] == "assistant" and assistant["content"][1]["name"] == "get_candles"
    assert results == {"role": "user", "content": [{
        "type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
        "content": json.dumps(call["result"])}]}
    assert (result.tokens_in, result.tokens_out) == usage("tool_call.json", "hold.json")


def test_the_last_round_requires_the_decide_tool() -> None:
    recorded = answers("tool_call.json", "tool_call.json", "hold.json")
    result = make_engine(recorded).decide(context())
    assert len(result.tool_calls) == 2
    last = recorded.requests[-1]
    assert [t["name"] for t in last["tools"]] == ["decide"]
    assert last["tool_choice"] == {"type": "tool", "name": "decide"}


def test_rate_limit_then_success_retries() -> None:
    recorded = answers((429, "rate_limited.json"), "decision.json")
    result = make_engine(recorded).decide(context())
    assert result.decision.actions[0].action is ActionType.BUY
    assert result.errors == [] and result.notes == ["attempt 1: HTTP 429, retrying"]
    assert len(recorded.requests) == 2


def test_malformed_body_is_a_hold_never_a_trade() -> None:
    recorded = answers("malformed.txt")
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    assert result.errors and "sk-ant-test-123" not in " ".join(result.errors)
    assert len(recorded.requests) == 1


def test_refusal_is_rejected_even_when_its_text_parses() -> None:
    result = make_engine(answers("refusal.json")).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    (answer,) = result.answers
    assert answer["raw_response"] == fixture_json("anthropic", "refusal.json")["content"][0][
        "text"]
    assert [e.split(":")[0] for e in answer["errors"]] == ["refused"]


def test_base_url_is_honoured_and_the_factory_builds_it() -> None:
    recorded = answers("decision.json")
    make_engine(recorded, LLM_BASE_URL="http://127.0.0.1:8089").decide(context())
    assert recorded.urls == ["http://127.0.0.1:8089/v1/messages"]
    engine = build_engine(load_settings(LLM_PROVIDER="anthropic", LLM_API_KEY="k"))
    assert isinstance(engine, LLMEngine) and engine.model == "claude-sonnet-4-5"


def test_a_decision_cut_off_at_max_tokens_is_a_hold_never_a_trade() -> None:
    """The API hands back what the model wrote of the decide tool's input before the limit:
    an answer cut short is traced with its stop reason, never acted on."""
    body = fixture_json("anthropic", "decision.json")
    body["stop_reason"] = "max_tokens"
    del body["content"][0]["input"]["summary"]  # what the limit left unwritten
    recorded = RecordedAnswers((200, json.dumps(body).encode()), http=httpx2)
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    assert result.errors == ["stop reason max_tokens"]


def test_cache_writes_and_reads_are_priced_at_their_own_rates() -> None:
    """Anthropic bills a prompt-cache write at 1.25x the input rate and a read at 0.1x:
    claude-sonnet-4-5 at genai-prices' $3 in, $3.75 cache write, $0.30 cache read and $15
    out per million tokens."""
    result = make_engine(answers("cached_prompt.json")).decide(context())
    assert result.errors == []
    assert (result.tokens_in, result.tokens_out) == (851 + 2000 + 10000, 142)
    assert result.cost == pytest.approx((851 * 3 + 2000 * 3.75 + 10000 * 0.3 + 142 * 15) / 1e6)


@pytest.mark.parametrize("limit", [b"1e999", b'"lots"', b"NaN", b"[60]"],
                         ids=["infinity", "word", "nan", "list"])
def test_a_bad_tool_argument_is_answered_with_an_error(limit: bytes) -> None:
    """``"limit": 1e999`` is infinity to a JSON reader, ``"lots"`` no number at all: the
    tool answers that the limit is bad (no rows at a limit the model never asked for), and
    the model decides on; the decision is not lost to "LLM call failed"."""
    bad = fixture("anthropic", "tool_call.json").replace(b'"limit": 60', b'"limit": ' + limit)
    recorded = RecordedAnswers((200, bad), (200, fixture("anthropic", "hold.json")),
                               http=httpx2)
    result = make_engine(recorded).decide(context())
    assert not any("LLM call failed" in e or "Overflow" in e for e in result.errors)
    [held] = result.decision.actions
    assert held.action is ActionType.HOLD and held.reason.startswith("Range-bound")
    (call,) = result.tool_calls
    assert "rows" not in call["result"] and "limit" in call["result"]["error"]
    assert len(recorded.requests) == 2  # the model read the error and decided


def test_a_tool_call_without_a_limit_gets_the_default_rows() -> None:
    unbounded = fixture("anthropic", "tool_call.json").replace(b', "limit": 60', b"")
    recorded = RecordedAnswers((200, unbounded), (200, fixture("anthropic", "hold.json")),
                               http=httpx2)
    (call,) = make_engine(recorded).decide(context()).tool_calls
    assert "limit" not in call["args"] and len(call["result"]["rows"]) == DEFAULT_ROWS


def test_the_recording_masks_a_secret_the_model_echoes_and_replays_the_same(tmp_path) -> None:
    """A key the model echoes (in a text beside its tool call, in its decision's reason) is
    masked in the recording as in a trace; a replay from that recording asks nothing and
    decides the same: the second request, which carries the echo, keys the same masked."""
    key = b"sk-ant-test-123"
    echo = fixture("anthropic", "tool_call.json").replace(b"before deciding.",
                                                           b"before deciding, as " + key)
    said = fixture("anthropic", "hold.json").replace(b"Range-bound;", b"Range-bound, " + key)
    path = tmp_path / "answers.jsonl"
    live = make_engine(RecordedAnswers((200, echo), (200, said), http=httpx2),
                       Recording(path, refresh=True)).decide(context())
    assert live.errors == [] and key.decode() in live.decision.actions[0].reason
    assert key not in path.read_bytes() and b"***" in path.read_bytes()
    unasked = RecordedAnswers(http=httpx2)  # any request fails the test
    replayed = Recording(path)
    again = make_engine(unasked, replayed).decide(context())
    assert unasked.requests == [] and replayed.hits == 2 and replayed.misses == 0
    assert [a.action for a in again.decision.actions] == [ActionType.HOLD]
    assert again.request_hash == live.request_hash and again.tool_calls == live.tool_calls
