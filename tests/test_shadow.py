"""The shadow engine: when an LLM decides, the rules engine decides on the same context, its
decision is recorded on the trace and scored, and nothing it decides is ever executed.

Through the real replay loop, with the real openai SDK served a recorded HOLD answer: the
LLM never trades, while the rules engine, on the same real candles, would have bought.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from sqlalchemy import create_engine, func, select

from bot.engine import openai_chat
from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.models import LLMTrace, Order, Trade
from db.performance import scope_sessions
from db.scorecard import span_scorecard
from tests.recorded_http import fixture
from tests.test_llm_replay import _factory
from tests.test_replay import candle_file

pytestmark = pytest.mark.slow


def test_the_shadow_decides_beside_the_llm_is_recorded_and_never_executed(
        tmp_path, monkeypatch) -> None:
    cut = tmp_path / "BTC_USDT-5m.csv"
    cut.write_text("".join(
        candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)[:701]))
    monkeypatch.setenv("LLM_MIN_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("LLM_API_KEY", "test-key-123")
    calls: list[str] = []
    monkeypatch.setattr(openai_chat, "make_client",
                        _factory(openai.OpenAI, httpx, calls, fixture("openai", "hold.json")))
    url = f"sqlite:///{tmp_path / 'a.db'}"
    summary = run_replay(ReplayArgs([cut], url, engine="openai",
                                    recording=tmp_path / "answers.jsonl"), progress=False)
    assert calls and summary["trades"] == 0 and summary["llm_cost"] > 0

    with create_engine(url).connect() as db:
        traces = db.execute(select(LLMTrace.engine, LLMTrace.decision_json,
                                   LLMTrace.shadow_decision)).all()
        orders = db.scalar(select(func.count()).select_from(Order))
        fills = db.scalar(select(func.count()).select_from(Trade))
    assert len(traces) == len(calls) > 400
    assert all(t.shadow_decision is not None for t in traces)
    assert not any("null" in t.shadow_decision for t in traces)  # unset fields: no bytes
    shadow_buys = [t for t in traces
                   if any(a["action"] == "BUY"
                          for a in json.loads(t.shadow_decision)["actions"])]
    assert shadow_buys  # the rules engine would have bought on these candles...
    assert (orders, fills) == (0, 0)  # ...and nothing of it went out

    with session_factory(make_engine(url))() as db:
        card = span_scorecard(db, scope_sessions(db, run=summary["run_name"]))
    versus = {row["horizon"]: row for row in card.versus_shadow}["1h"]
    assert versus["decisions"] == len(traces)
    assert versus["llm_directional"] == 0  # the LLM only held
    assert versus["shadow_directional"] > 0
    assert versus["llm_cost"] == pytest.approx(summary["llm_cost"])
    assert versus["llm_net_of_cost"] == pytest.approx(-summary["llm_cost"])
