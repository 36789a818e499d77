"""A Gemini replay recorded once replays for free: same fills, same cost, no API call.

The real google-genai client runs against an httpx2.MockTransport serving a recorded
generateContent body; the second replay gets a transport that fails the test if it is ever
reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from google import genai
from google.genai import types

from bot.engine import gemini
from bot.replay import ReplayArgs, run_replay
from tests.test_replay import write_candles

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


def _client_factory(calls: list[str], answer: dict | None):
    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(str(request.url))
        if answer is None:
            raise AssertionError("the API was called during a recorded replay")
        return httpx2.Response(200, json=answer)

    def make(_settings) -> genai.Client:
        return genai.Client(api_key="test-key-123", http_options=types.HttpOptions(
            client_args={"transport": httpx2.MockTransport(handler)}))

    return make


def test_recorded_replay_makes_no_call_and_has_the_same_fingerprint(tmp_path, monkeypatch):
    closes = [22000 + 40 * ((i % 24) - 12) / 12 + i * 0.5 for i in range(240)]
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", closes)
    recording = tmp_path / "gemini.jsonl"
    answer = json.loads((FIXTURES / "decision.json").read_text())
    monkeypatch.setenv("LLM_MIN_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-123")

    live_calls: list[str] = []
    monkeypatch.setattr(gemini, "_make_client", _client_factory(live_calls, answer))
    first = run_replay(ReplayArgs([candles], f"sqlite:///{tmp_path / 'a.db'}", engine="gemini",
                                  recording=recording), progress=False)
    assert len(live_calls) > 10 and first["trades"] > 0 and first["llm_cost"] > 0
    assert len(recording.read_text().splitlines()) == len(live_calls)

    replay_calls: list[str] = []
    monkeypatch.setattr(gemini, "_make_client", _client_factory(replay_calls, None))
    second = run_replay(ReplayArgs([candles], f"sqlite:///{tmp_path / 'b.db'}", engine="gemini",
                                   recording=recording), progress=False)
    assert replay_calls == []
    assert second["fingerprint"] == first["fingerprint"]
    assert second["llm_cost"] == pytest.approx(first["llm_cost"])
    assert second == first


def test_record_asks_the_api_again_and_appends(tmp_path, monkeypatch):
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", [22000.0 + i for i in range(210)])
    recording = tmp_path / "gemini.jsonl"
    answer = json.loads((FIXTURES / "hold.json").read_text())
    monkeypatch.setenv("LLM_MIN_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-123")
    calls: list[str] = []
    monkeypatch.setattr(gemini, "_make_client", _client_factory(calls, answer))
    asked: list[int] = []
    for name in ("a", "b"):
        run_replay(ReplayArgs([candles], f"sqlite:///{tmp_path / name}.db", engine="gemini",
                              recording=recording, record=True), progress=False)
        asked.append(len(calls))
    first = asked[0]
    assert first > 0
    assert asked == [first, 2 * first]  # the second run asked again for every decision
    assert len(recording.read_text().splitlines()) == 2 * first


def test_a_line_cut_by_a_kill_is_asked_again(tmp_path) -> None:
    answer = gemini.types.GenerateContentResponse.model_validate(
        json.loads((FIXTURES / "hold.json").read_text()))
    path = tmp_path / "gemini.jsonl"
    recording = gemini.Recording(path)
    recording.put("a", answer)
    path.write_text(path.read_text() + '{"key": "b", "respo')  # killed mid-write
    reopened = gemini.Recording(path)
    assert reopened.get("a") is not None and reopened.get("b") is None
    reopened.put("b", answer)
    assert set(gemini.Recording(path)._answers) == {"a", "b"}
    path.write_text('garbage\n' + path.read_text())
    with pytest.raises(ValueError, match="gemini.jsonl:1"):
        gemini.Recording(path)
