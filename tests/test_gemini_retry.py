"""A Gemini answer asked again keeps the first: every answer reaches the decision's trace.

Gemini 2.5 gets the tools without the JSON schema, so a free-form answer that does not parse
is asked once more under the schema. The real google-genai client runs against recorded
generateContent bodies (an httpx2.MockTransport, as in test_gemini_engine), inside the real
loop on the paper venue, and the trace row is read back from SQLite.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.engine.pricing import cost_usd
from bot.runtime import Runtime
from db.models import LLMTrace, Order, SessionStatsCache
from db.traces import trace_texts
from tests.conftest import candle_file
from tests.loop_harness import make_runtime, step
from tests.test_console_apptest import _app, _console_env, _open  # noqa: F401
from tests.test_gemini_engine import Recorder, body, context, make_engine

NOT_JSON = "not_json_decision.json"


def answer_text(name: str) -> str:
    return body(name)["candidates"][0]["content"]["parts"][0]["text"]


def usage(*names: str) -> tuple[int, int]:
    """Billed tokens in and out of these recorded answers (thinking is output)."""
    meta = [body(name)["usageMetadata"] for name in names]
    return (sum(m["promptTokenCount"] for m in meta),
            sum(m["candidatesTokenCount"] + m.get("thoughtsTokenCount", 0) for m in meta))


def gemini_runtime(url: str, *answers: str) -> tuple[Runtime, Recorder]:
    recorder = Recorder(*[(200, body(name)) for name in answers])
    engine = make_engine(recorder, SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h")
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], engine, LLM_PROVIDER="gemini",
                      GEMINI_API_KEY="test-key-123")
    return rt, recorder


def only_trace(rt: Runtime) -> LLMTrace:
    """The one trace, its prompt and answers read back from the blobs as the console does."""
    with rt.db() as db:
        (trace,) = db.scalars(select(LLMTrace)).all()
        texts = trace_texts(db, {c.key: getattr(trace, c.key)
                                 for c in LLMTrace.__table__.columns})
        db.expunge(trace)
    for name, text in texts.items():
        setattr(trace, name, text)
    return trace


def test_unparseable_then_valid_traces_both_answers_and_counts_both_calls(sqlite_url) -> None:
    rt, recorder = gemini_runtime(sqlite_url, NOT_JSON, "buy_market.json")
    step(rt)
    assert len(recorder.requests) == 2
    trace = only_trace(rt)
    first, second = trace.answers
    assert first["raw_response"] == answer_text(NOT_JSON)
    assert any("not JSON" in e for e in first["errors"])
    assert second == {"raw_response": answer_text("buy_market.json"), "errors": []}
    assert trace.raw_response == answer_text("buy_market.json")  # the answer decided on
    assert any(e.startswith("answer 1: response is not JSON") for e in trace.errors)
    tokens_in, tokens_out = usage(NOT_JSON, "buy_market.json")
    assert (trace.tokens_in, trace.tokens_out) == (tokens_in, tokens_out)
    assert trace.cost == pytest.approx(cost_usd("gemini-2.5-flash", tokens_in, tokens_out))
    with rt.db() as db:
        assert db.get(SessionStatsCache, rt.session_id).total_llm_cost == pytest.approx(
            trace.cost)
        (entry,) = db.scalars(select(Order).where(Order.purpose == "entry")).all()
    assert entry.trace_id == trace.id  # the valid second answer trades


def test_a_retry_that_answers_is_traced_ok_with_the_first_failure_as_a_note(sqlite_url) -> None:
    """The trace's status is the final outcome: the second answer parsed and was carried
    out, so the trace is ok; the first answer's failure stays on it as a note."""
    rt, _ = gemini_runtime(sqlite_url, NOT_JSON, "buy_market.json")
    step(rt)
    trace = only_trace(rt)
    assert trace.status == "ok", trace.errors
    assert [e for e in trace.errors if not e.startswith("answer 1: ")] == []
    assert any(e.startswith("answer 1: response is not JSON") for e in trace.errors)


@pytest.mark.parametrize("second", [NOT_JSON, "partly_invalid_decision.json"])
def test_two_bad_answers_are_rejected_never_traded_and_both_traced(sqlite_url, second) -> None:
    rt, recorder = gemini_runtime(sqlite_url, NOT_JSON, second)
    step(rt)
    assert len(recorder.requests) == 2  # one retry, no more
    with rt.db() as db:
        assert db.scalars(select(Order)).all() == []  # nothing sent, so nothing can fill
    trace = only_trace(rt)
    assert trace.status == "rejected"
    assert [a["action"] for a in json.loads(trace.decision_json)["actions"]] == ["HOLD"]
    assert [a["raw_response"] for a in trace.answers] == [answer_text(NOT_JSON),
                                                          answer_text(second)]
    assert all(a["errors"] for a in trace.answers)
    assert any(e.startswith("answer 1: ") for e in trace.errors)
    assert any(e.startswith("answer 2: ") for e in trace.errors)
    assert (trace.tokens_in, trace.tokens_out) == usage(NOT_JSON, second)


def test_one_answer_is_traced_alone() -> None:
    """Without a retry the answer's errors stay as they were, without an answer number."""
    recorder = Recorder((200, body("partly_invalid_decision.json")))
    result = make_engine(recorder, LLM_MODEL="gemini-3-pro-preview").decide(context())
    assert len(recorder.requests) == 1
    assert result.answers == [{"raw_response": answer_text("partly_invalid_decision.json"),
                               "errors": ["action 1: invalid action"]}]
    assert result.errors == ["action 1: invalid action"]


def test_decisions_page_shows_every_answer_with_its_errors(sqlite_url, monkeypatch) -> None:
    rt, _ = gemini_runtime(sqlite_url, NOT_JSON, "buy_market.json")
    step(rt)
    at = _open(_app(sqlite_url, monkeypatch), "decisions")
    codes = [c.value for c in at.code]
    assert answer_text(NOT_JSON) in codes and answer_text("buy_market.json") in codes
    assert any(c.startswith("response is not JSON") for c in codes)  # answer 1's own errors
    captions = [c.value for c in at.caption]
    assert "Answer 1 of 2" in captions and "Answer 2 of 2" in captions
