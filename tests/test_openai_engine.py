"""The OpenAI-compatible provider through the real ``openai`` SDK against recorded bodies.

The bodies in tests/fixtures/openai are chat.completions answers as the API (and Ollama's
compatible endpoint) sends them, served by an httpx.MockTransport: the SDK's own request
building and response parsing run for real.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from bot.config import ConfigError, load_settings
from bot.engine.factory import build_engine
from bot.engine.llm import LLMEngine
from bot.engine.openai_chat import OpenAIChatAdapter
from bot.engine.pricing import price_for
from bot.engine.prompt import PROMPT_VERSION
from bot.engine.schema import ActionType
from tests import recorded_http
from tests.recorded_http import RecordedAnswers, fixture
from tests.test_gemini_engine import NOW, context


def answers(*names: str | tuple[int, str]) -> RecordedAnswers:
    return recorded_http.answers("openai", *names)


def make_engine(recorded: RecordedAnswers, **overrides: Any) -> LLMEngine:
    settings = load_settings(**{"LLM_PROVIDER": "openai", "LLM_API_KEY": "sk-test-key-123",
                                "LLM_MIN_INTERVAL_SECONDS": 60, **overrides})
    client = openai.OpenAI(api_key="sk-test-key-123", base_url=settings.llm_base_url,
                           max_retries=0, http_client=recorded.client())
    return LLMEngine(settings, OpenAIChatAdapter(settings, client), sleep=lambda _s: None)


def usage(*names: str) -> tuple[int, int]:
    return recorded_http.usage("openai", names, "prompt_tokens", "completion_tokens")


def test_decision_is_parsed_priced_and_traced() -> None:
    recorded = answers("decision.json")
    result = make_engine(recorded).decide(context())
    assert result.errors == []
    (action,) = result.decision.actions
    assert action.action is ActionType.BUY and action.quote_value == 500 and action.stop == 21700
    assert (result.tokens_in, result.tokens_out) == usage("decision.json")
    # gpt-4o-mini at genai-prices' $0.15 in / $0.60 out per million tokens
    assert result.cost == pytest.approx((2298 * 0.15 + 71 * 0.60) / 1e6)
    assert result.engine == result.provider == "openai" and result.model == "gpt-4o-mini"
    assert result.model_version == "gpt-4o-mini-2024-07-18"
    assert result.temperature == 0.2 and result.prompt_version == PROMPT_VERSION
    assert result.price_source == "genai-prices" and len(result.request_hash or "") == 64
    (request,) = recorded.requests
    assert recorded.urls[0] == "https://api.openai.com/v1/chat/completions"
    assert request["model"] == "gpt-4o-mini" and request["temperature"] == 0.2
    assert request["messages"][0]["role"] == "system"
    schema = request["response_format"]["json_schema"]["schema"]
    assert "actions" in json.dumps(schema) and "UPDATE_PLAN" in json.dumps(schema)
    assert {t["function"]["name"] for t in request["tools"]} == {
        "get_candles", "get_order_book", "get_indicators"}


def test_cached_prompt_tokens_are_priced_at_the_cache_read_rate() -> None:
    """OpenAI counts cache hits among the prompt tokens and bills them at half the input
    rate: gpt-4o-mini at genai-prices' $0.15 in, $0.075 cached and $0.60 out per million."""
    result = make_engine(answers("cached_prompt.json")).decide(context())
    assert result.errors == []
    assert (result.tokens_in, result.tokens_out) == (12298, 71)
    assert (result.cache_read_tokens, result.cache_write_tokens) == (10240, 0)
    assert result.cost == pytest.approx((2058 * 0.15 + 10240 * 0.075 + 71 * 0.60) / 1e6)


def test_a_prompt_cut_to_the_budget_is_sent_saying_so_and_traced() -> None:
    """The budget cut is the safety net: what it dropped is stated in the prompt the model
    reads and in the trace's notes, and the decision is still asked and parsed."""
    whole = make_engine(answers("decision.json")).decide(context())
    assert whole.errors == [] and "Omitted" not in whole.prompt
    recorded = answers("decision.json")
    result = make_engine(recorded, PROMPT_TOKEN_BUDGET=750).decide(context())
    (note,) = result.notes
    assert result.errors == [] and note.startswith("prompt cut to fit the budget: BTC/USDT 5m: ")
    assert note.endswith(" oldest candles")
    (request,) = recorded.requests
    sent = request["messages"][1]["content"]
    assert "Omitted to fit the token budget: BTC/USDT 5m: " in sent and sent in result.prompt
    assert result.prompt.count("\n") < whole.prompt.count("\n")
    assert [a.action for a in result.decision.actions] == [ActionType.BUY]


def test_tool_call_then_decision_runs_our_loop() -> None:
    recorded = answers("tool_call.json", "hold.json")
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    (call,) = result.tool_calls
    assert call["name"] == "get_candles" and call["args"]["limit"] == 60
    rows = call["result"]["rows"]
    assert 0 < len(rows) <= 60 and rows[-1][0] < NOW.isoformat()  # newest kept, none future
    first, second = recorded.requests
    assistant, tool = second["messages"][2:4]
    assert assistant["tool_calls"][0]["id"] == "call_Qm3xY8vTn2LkP0wR5sJd1FhA"
    assert tool == {"role": "tool", "tool_call_id": "call_Qm3xY8vTn2LkP0wR5sJd1FhA",
                    "content": json.dumps(call["result"])}
    assert (result.tokens_in, result.tokens_out) == usage("tool_call.json", "hold.json")
    # the trace names the first request: the decision's own question
    assert second["messages"][:2] == first["messages"][:2]


def test_rate_limit_then_success_retries() -> None:
    slept: list[float] = []
    recorded = answers((429, "rate_limited.json"), "decision.json")
    engine = make_engine(recorded)
    engine._sleep = slept.append
    result = engine.decide(context())
    assert result.decision.actions[0].action is ActionType.BUY
    assert result.errors == [] and result.notes == ["attempt 1: HTTP 429, retrying"]
    assert slept == [1.0]
    assert len(recorded.requests) == 2


def test_malformed_body_is_a_hold_never_a_trade() -> None:
    recorded = answers("malformed.txt")
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    assert result.errors and "sk-test-key-123" not in " ".join(result.errors)
    assert len(recorded.requests) == 1  # a broken body is not asked again


def test_refusal_is_rejected_and_traced() -> None:
    result = make_engine(answers("refusal.json")).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    assert result.errors == ["refused: I'm sorry, but I can't help with making trading "
                             "decisions."]
    assert result.answers == [{"raw_response": None, "errors": result.errors}]
    assert (result.tokens_in, result.tokens_out) == usage("refusal.json")  # still paid for


def test_a_local_server_needs_no_key_costs_nothing_and_is_labelled_local() -> None:
    recorded = answers("ollama_decision.json")
    settings = load_settings(LLM_PROVIDER="openai", LLM_MODEL="qwen2.5:7b",
                             LLM_BASE_URL="http://127.0.0.1:11434/v1")
    adapter = OpenAIChatAdapter(settings)
    adapter._client = openai.OpenAI(api_key="no-key", base_url=settings.llm_base_url,
                                    http_client=recorded.client())
    result = LLMEngine(settings, adapter).decide(context())
    assert result.decision.actions[0].action is ActionType.BUY
    assert result.cost == 0 and result.price_source == "local" and result.tokens_in == 2187
    assert recorded.urls == ["http://127.0.0.1:11434/v1/chat/completions"]


def test_a_server_refusing_a_schema_gets_json_mode_and_one_refusing_tools_none() -> None:
    schema_refused = json.dumps({"error": {"message": "response_format json_schema is not "
                                           "supported", "type": "invalid_request_error"}})
    tools_refused = json.dumps({"error": {"message": "registry.ollama.ai/library/gemma3:4b "
                                          "does not support tools", "type": "api_error"}})
    recorded = RecordedAnswers((400, tools_refused.encode()), (400, schema_refused.encode()),
                               (200, fixture("openai", "ollama_decision.json")))
    engine = make_engine(recorded, LLM_BASE_URL="http://localhost:11434/v1")
    result = engine.decide(context())
    assert result.decision.actions[0].action is ActionType.BUY
    first, second, third = recorded.requests
    assert "tools" in first and "tools" not in second and "tools" not in third
    assert third["response_format"] == {"type": "json_object"}
    assert result.errors == [] and result.notes == [
        "the endpoint refuses tools: deciding without them",
        "the endpoint refuses a JSON schema: JSON mode"]


def test_settings_name_the_provider_and_its_defaults() -> None:
    engine = build_engine(load_settings(LLM_PROVIDER="openai", LLM_API_KEY="k"))
    assert isinstance(engine, LLMEngine) and engine.name == "openai"
    assert engine.model == "gpt-4o-mini"
    assert price_for("some-unlisted-model", "openai").source.startswith("unknown")


def test_an_error_echoing_the_key_is_traced_without_it() -> None:
    echo = json.dumps({"error": {"message": "Incorrect API key provided: sk-test-key-123. You "
                                 "can find your API key at https://platform.openai.com/account"
                                 "/api-keys.", "type": "invalid_request_error",
                                 "param": None, "code": "invalid_api_key"}})
    recorded = RecordedAnswers((401, echo.encode()))
    result = make_engine(recorded).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    errors = " ".join(result.errors)
    assert "Incorrect API key" in errors and "***" in errors and "sk-test-key-123" not in errors
    assert len(recorded.requests) == 1  # a 401 is not retried


def test_a_key_the_sdk_took_from_its_own_variable_is_scrubbed_too(monkeypatch) -> None:
    """Without LLM_API_KEY the SDK sends OPENAI_API_KEY: a proxy's error echoing it in full
    reaches the trace only masked."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-4567")
    echo = json.dumps({"error": {"message": "Authentication Error, Invalid proxy server token "
                                 "passed. Received API Key = sk-env-key-4567",
                                 "type": "auth_error", "param": None, "code": "401"}})
    recorded = RecordedAnswers((401, echo.encode()))
    settings = load_settings(LLM_PROVIDER="openai", LLM_BASE_URL="https://llm.example.com/v1")
    client = openai.OpenAI(base_url=settings.llm_base_url, max_retries=0,
                           http_client=recorded.client())
    result = LLMEngine(settings, OpenAIChatAdapter(settings, client)).decide(context())
    assert recorded.headers[0]["authorization"] == "Bearer sk-env-key-4567"
    errors = " ".join(result.errors)
    assert "Received API Key" in errors and "sk-env-key-4567" not in errors


def test_a_bad_llm_prices_json_stops_startup_instead_of_each_decision(monkeypatch) -> None:
    """The engine is priced once when it is built: a bad table is a setting error naming
    it, not an exception out of every decision into the loop."""
    monkeypatch.setenv("LLM_PRICES_JSON", '{"gpt-4o-mini": {"input": 1}}')
    with pytest.raises(ConfigError, match="invalid LLM_PRICES_JSON"):
        build_engine(load_settings(LLM_PROVIDER="openai", LLM_API_KEY="k"))


def test_a_model_refusing_a_temperature_gets_none_and_the_trace_says_so() -> None:
    refused = json.dumps({"error": {
        "message": "Unsupported value: 'temperature' does not support 0.2 with this model. "
                   "Only the default (1) value is supported.",
        "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}})
    recorded = RecordedAnswers((400, refused.encode()), (200, fixture("openai", "tool_call.json")),
                               (200, fixture("openai", "hold.json")))
    result = make_engine(recorded, LLM_MODEL="o4-mini").decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    first, second, third = recorded.requests
    assert first["temperature"] == 0.2
    assert "temperature" not in second and "temperature" not in third
    assert result.temperature is None
    assert result.errors == [] and result.notes == ["the model refuses a temperature: sending none"]
