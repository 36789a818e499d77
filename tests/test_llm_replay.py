"""A replay with each new provider, recorded once, replays from its recording: it trades,
traces, and a second run asks nothing and ends with the same fingerprint and cost.

The real SDK runs against a recorded body served by an httpx transport (httpx for openai,
httpx2 for anthropic); the second run's transport fails the test if it is ever reached.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from sqlalchemy import create_engine, select

from bot.engine import anthropic_messages, openai_chat
from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.models import LLMTrace
from db.performance import scope_sessions
from db.scorecard import span_scorecard
from tests.recorded_http import fixture
from tests.test_replay import write_candles


def _factory(sdk: Callable[..., Any], http: ModuleType, calls: list[str],
             body: bytes | None) -> Callable[[Any], Any]:
    def handler(request: Any) -> Any:
        calls.append(str(request.url))
        if body is None:
            raise AssertionError("the API was called during a recorded replay")
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    def make(_settings: Any) -> Any:
        return sdk(api_key="test-key-123", max_retries=0,
                   http_client=http.Client(transport=http.MockTransport(handler)))

    return make


PROVIDERS = {
    "openai": (openai_chat, openai.OpenAI, httpx),
    "anthropic": (anthropic_messages, anthropic.Anthropic, httpx2),
}


@pytest.mark.slow
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_recorded_replay_trades_traces_and_replays_without_a_call(
        provider, tmp_path, monkeypatch) -> None:
    module, sdk, http = PROVIDERS[provider]
    closes = [22000 + 40 * ((i % 24) - 12) / 12 + i * 0.5 for i in range(240)]
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", closes)
    recording = tmp_path / "answers.jsonl"
    monkeypatch.setenv("LLM_MIN_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("LLM_API_KEY", "test-key-123")

    live: list[str] = []
    monkeypatch.setattr(module, "make_client",
                        _factory(sdk, http, live, fixture(provider, "decision.json")))
    first_db = tmp_path / "a.db"
    first = run_replay(ReplayArgs([candles], f"sqlite:///{first_db}", engine=provider,
                                  recording=recording), progress=False)
    assert len(live) > 10 and first["trades"] > 0 and first["llm_cost"] > 0
    assert len(recording.read_text().splitlines()) == len(live)
    with create_engine(f"sqlite:///{first_db}").connect() as db:
        providers = set(db.scalars(select(LLMTrace.provider)).all())
    assert providers == {provider}
    with session_factory(make_engine(f"sqlite:///{first_db}"))() as db:  # ...and scores
        card = span_scorecard(db, scope_sessions(db, run=first["run_name"]))
    assert card.decisions == len(live) and card.cost == pytest.approx(first["llm_cost"])
    assert {row["action"] for row in card.by_call} >= {"BUY"}
    assert card.versus_shadow and card.versus_shadow[0]["decisions"] == len(live)

    replayed: list[str] = []
    monkeypatch.setattr(module, "make_client", _factory(sdk, http, replayed, None))
    second = run_replay(ReplayArgs([candles], f"sqlite:///{tmp_path / 'b.db'}", engine=provider,
                                   recording=recording), progress=False)
    assert replayed == []
    assert second == first  # the same fingerprint, fills and LLM cost
