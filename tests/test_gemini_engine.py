"""The Gemini engine through the real google-genai client against recorded API bodies.

The bodies in tests/fixtures/gemini are shaped like the REST API's generateContent answers
and served by an httpx2.MockTransport, so the SDK's own request building and response
parsing run for real; only the network is replaced.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pandas as pd
import pytest
from google import genai
from google.genai import types

from bot.config import load_settings
from bot.engine.factory import build_engine
from bot.engine.gemini import GeminiEngine
from bot.engine.pricing import cost_usd, price_for
from bot.engine.prompt import PROMPT_VERSION
from bot.engine.rules import RulesEngine
from bot.engine.schema import ActionType
from bot.model.decision import DecisionContext, MarketView

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
NOW = datetime(2023, 2, 9, 21, 0, tzinfo=UTC)


def body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


class UnrecordedRequest(BaseException):
    """A request beyond the recorded answers. Not an ``Exception``: the engine turns every
    ``Exception`` into a HOLD, which would let a test expecting a HOLD pass by accident."""


class Recorder:
    """Serves queued responses in order and keeps every request the SDK sent."""

    def __init__(self, *responses: tuple[int, Any]) -> None:
        self.queue = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.urls: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.urls.append(str(request.url))
        self.requests.append(json.loads(request.content))
        if not self.queue:
            raise UnrecordedRequest(f"request {len(self.requests)} has no recorded answer")
        status, payload = self.queue.pop(0)
        if isinstance(payload, bytes):
            return httpx2.Response(status, content=payload,
                                   headers={"content-type": "application/json"})
        return httpx2.Response(status, json=payload)


def make_engine(recorder: Recorder, **overrides: Any) -> GeminiEngine:
    settings = load_settings(LLM_PROVIDER="gemini", GEMINI_API_KEY="test-key-123",
                             LLM_MIN_INTERVAL_SECONDS=60, **overrides)
    client = genai.Client(api_key="test-key-123", http_options=types.HttpOptions(
        client_args={"transport": httpx2.MockTransport(recorder)}))
    return GeminiEngine(settings, client=client, sleep=lambda _s: None)


def context(now: datetime = NOW, llm_cost: float = 0.0) -> DecisionContext:
    rng = np.random.default_rng(3)
    close = 21900 + np.cumsum(rng.normal(0, 15, 120))
    frame = pd.DataFrame({
        "timestamp": pd.date_range(end=now - timedelta(minutes=5), periods=120, freq="5min",
                                   tz="UTC"),
        "open": close - 3, "high": close + 10, "low": close - 10, "close": close,
        "volume": rng.uniform(50, 500, 120),
    })
    view = MarketView("BTC/USDT", float(close[-1]), float(close[-1]) - 0.5,
                      float(close[-1]) + 0.5, 0.005, 0.1, {"5m": frame, "1h": frame.iloc[:0]})
    return DecisionContext(now=now, session_id=1, symbols=["BTC/USDT"],
                           markets={"BTC/USDT": view}, positions=[], open_orders=[],
                           open_plans=[], recent_trades=[],
                           stats={"total_llm_cost": llm_cost}, equity=10_000.0,
                           quote_balance=10_000.0)


def test_json_decision_is_parsed_priced_and_recorded() -> None:
    recorder = Recorder((200, body("decision.json")))
    result = make_engine(recorder).decide(context())
    assert result.errors == []
    (action,) = result.decision.actions
    assert action.action is ActionType.BUY and action.quote_value == 500 and action.stop == 21700
    assert (result.tokens_in, result.tokens_out) == (2412, 96 + 395)  # thinking is output
    # Priced at Gemini 2.5 Flash's published $0.30 in / $2.50 out per million tokens.
    assert result.cost == pytest.approx((2412 * 0.30 + 491 * 2.50) / 1e6)
    assert result.model == "gemini-2.5-flash" and result.engine == "gemini"
    assert f"prompt {PROMPT_VERSION}" in result.prompt and result.latency_ms > 0
    assert recorder.urls[0].endswith("models/gemini-2.5-flash:generateContent")


def test_cached_content_tokens_are_priced_at_the_cache_read_rate() -> None:
    """Gemini counts cached content among the prompt tokens and bills it at a tenth of the
    input rate: gemini-2.5-flash at genai-prices' $0.30 in, $0.03 cached and $2.50 out."""
    result = make_engine(Recorder((200, body("cached_prompt.json")))).decide(context())
    assert result.errors == []
    assert (result.tokens_in, result.tokens_out) == (12412, 96 + 395)
    assert (result.cache_read_tokens, result.cache_write_tokens) == (10000, 0)
    assert result.cost == pytest.approx((2412 * 0.30 + 10000 * 0.03 + 491 * 2.50) / 1e6)


def test_function_call_then_decision_runs_our_loop() -> None:
    recorder = Recorder((200, body("function_call.json")), (200, body("hold.json")))
    result = make_engine(recorder).decide(context())
    assert [a.action for a in result.decision.actions] == [ActionType.HOLD]
    (call,) = result.tool_calls
    assert call["name"] == "get_candles" and call["args"]["limit"] == 60
    rows = call["result"]["rows"]
    assert 0 < len(rows) <= 60 and rows[-1][0] < NOW.isoformat()  # newest kept, none future
    assert len(json.dumps(call["result"])) <= 8000
    first, second = recorder.requests
    declared = {f["name"] for t in first["tools"] for f in t["functionDeclarations"]}
    assert declared == {"get_candles", "get_order_book", "get_indicators"}
    # Gemini 2.5 refuses tools together with a JSON schema: the tool round carries none.
    assert "responseMimeType" not in first.get("generationConfig", {})
    sent = second["contents"]
    assert sent[1]["parts"][0]["functionCall"]["name"] == "get_candles"
    assert sent[2]["parts"][0]["functionResponse"]["name"] == "get_candles"
    assert result.tokens_in == 2530 + 4950


def test_request_carries_schema_and_tools_for_a_model_that_accepts_both() -> None:
    recorder = Recorder((200, body("decision.json")))
    make_engine(recorder, LLM_MODEL="gemini-3-pro-preview").decide(context())
    (request,) = recorder.requests
    config = request["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = json.dumps(config.get("responseSchema") or config.get("responseJsonSchema"))
    assert "actions" in schema and "UPDATE_PLAN" in schema
    assert {f["name"] for f in request["tools"][0]["functionDeclarations"]} == {
        "get_candles", "get_order_book", "get_indicators"}
    assert "systemInstruction" in request


def test_a_model_refusing_tools_with_a_schema_is_split_and_noted_not_rejected() -> None:
    refused = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                         "Function calling with a response mime type: 'application/json' "
                         "is unsupported"}}
    recorder = Recorder((400, refused), (200, body("decision.json")))
    result = make_engine(recorder, LLM_MODEL="gemini-3-pro-preview").decide(context())
    assert result.decision.actions[0].action is ActionType.BUY
    assert "responseMimeType" not in recorder.requests[1].get("generationConfig", {})
    assert result.errors == [] and result.notes == [
        "model refuses tools with a JSON schema: split mode"]


def test_final_round_without_tools_carries_the_schema() -> None:
    recorder = Recorder((200, body("function_call.json")), (200, body("function_call.json")),
                        (200, body("hold.json")))
    result = make_engine(recorder).decide(context())
    assert len(recorder.requests) == 3 and len(result.tool_calls) == 2
    last = recorder.requests[-1]
    assert "tools" not in last and last["generationConfig"]["responseMimeType"] == (
        "application/json")
    assert result.decision.actions[0].action is ActionType.HOLD


def test_rate_limit_then_success_retries() -> None:
    recorder = Recorder((429, body("rate_limited.json")), (200, body("decision.json")))
    result = make_engine(recorder).decide(context())
    assert result.decision.actions[0].action is ActionType.BUY
    assert result.errors == [] and any("429" in note for note in result.notes)


def test_retries_are_bounded() -> None:
    recorder = Recorder(*[(503, {"error": {"code": 503, "message": "overloaded",
                                           "status": "UNAVAILABLE"}})] * 4)
    result = make_engine(recorder).decide(context())
    assert len(recorder.requests) == 4
    assert result.decision.actions[0].action is ActionType.HOLD and result.errors


def test_malformed_body_is_a_hold_with_errors() -> None:
    recorder = Recorder((200, b'{"candidates": [{"content": {"parts": [{"text": "{'))
    result = make_engine(recorder).decide(context())
    assert result.decision.actions[0].action is ActionType.HOLD and result.errors
    assert "test-key-123" not in " ".join(result.errors)


def test_an_error_echoing_the_key_is_stored_without_it() -> None:
    echo = {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                      "message": "API key test-key-123 not valid (?key=test-key-123&sign=f00)"}}
    result = make_engine(Recorder((400, echo))).decide(context())
    assert result.decision.actions[0].action is ActionType.HOLD
    errors = " ".join(result.errors)
    assert "not valid" in errors and "***" in errors  # the error is kept, the key is not
    assert "test-key-123" not in errors and "f00" not in errors


def test_unparseable_answer_gets_one_schema_retry_then_holds() -> None:
    recorder = Recorder((200, body("not_json_decision.json")),
                        (200, body("not_json_decision.json")))
    result = make_engine(recorder).decide(context())
    assert recorder.requests[1]["generationConfig"]["responseMimeType"] == "application/json"
    assert result.decision.actions[0].action is ActionType.HOLD
    assert any("not JSON" in e for e in result.errors)


def test_min_interval_and_cost_cap_skip_without_calling() -> None:
    recorder = Recorder((200, body("decision.json")))
    engine = make_engine(recorder)
    engine.decide(context())
    skipped = engine.decide(context(NOW + timedelta(seconds=10)))
    assert skipped.skipped and "min interval" in skipped.skipped
    nothing = Recorder()
    capped = make_engine(nothing).decide(context(llm_cost=5.0))
    assert capped.skipped and "cost cap" in capped.skipped and nothing.requests == []
    assert capped.decision.actions[0].action is ActionType.HOLD
    assert len(recorder.requests) == 1


def test_pricing_prefers_the_longest_prefix_and_overrides(monkeypatch) -> None:
    assert price_for("gemini-2.5-flash-lite").input_per_m < price_for("gemini-2.5-flash").input_per_m
    assert price_for("gemini-2.5-flash-preview-09-2025").output_per_m == 2.5
    unknown = price_for("some-new-model")
    assert unknown.output_per_m >= 10 and "unknown" in unknown.source
    monkeypatch.setenv("LLM_PRICES_JSON", '{"gemini-2.5-flash": {"input": 1, "output": 2}}')
    assert cost_usd("gemini-2.5-flash", 1_000_000, 1_000_000) == pytest.approx(3.0)


def test_llm_prices_json_carries_cache_rates_and_defaults_them(monkeypatch) -> None:
    """An override's own cache rates price the cached content; without them a model
    genai-prices lists keeps its listed cache-to-input ratio (a tenth for Gemini 2.5
    Flash), and one it does not list is charged the input rate."""
    monkeypatch.setenv("LLM_PRICES_JSON", '{"gemini-2.5-flash": '
                       '{"input": 1, "output": 2, "cache_read": 0.5, "cache_write": 1.5}}')
    result = make_engine(Recorder((200, body("cached_prompt.json")))).decide(context())
    assert result.price_source == "LLM_PRICES_JSON"
    assert result.cost == pytest.approx((2412 * 1 + 10000 * 0.5 + 491 * 2) / 1e6)
    assert price_for("gemini-2.5-flash").cache_write_per_m == 1.5
    monkeypatch.setenv("LLM_PRICES_JSON", '{"gemini-2.5-flash": [1, 2], "my-model": [1, 2]}')
    defaulted = price_for("gemini-2.5-flash")
    assert (defaulted.cache_read_per_m, defaulted.cache_write_per_m) == (0.1, 1.0)
    unlisted = price_for("my-model")
    assert (unlisted.cache_read_per_m, unlisted.cache_write_per_m) == (1.0, 1.0)
    monkeypatch.setenv("LLM_PRICES_JSON", '{"my-model": {"input": 1, "output": 2, '
                       '"cache_read": "cheap"}}')
    with pytest.raises(ValueError, match="invalid LLM_PRICES_JSON"):
        price_for("my-model")


def test_factory_builds_the_configured_engine() -> None:
    assert isinstance(build_engine(load_settings()), RulesEngine)
    gemini = build_engine(load_settings(LLM_PROVIDER="gemini", GEMINI_API_KEY="k"))
    assert isinstance(gemini, GeminiEngine) and gemini.model == "gemini-2.5-flash"
