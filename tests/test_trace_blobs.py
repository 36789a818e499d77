"""Prompts and LLM answers are stored once, compressed; traces written before read as they did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, text

from bot.engine.schema import Action, ActionType, Decision
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import LLMTrace, TraceBlob
from db.queries_trading import trace_detail
from db.traces import add_trace
from tests.conftest import database_at
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.test_replay import write_candles

BEFORE = "0008_trace_provider"
T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)
PROMPT = "system: trade well\n\n" + "BTC/USDT 5m candles\n" + "100,101,99,100.5,3\n" * 200
ANSWER = '{"actions": [{"action": "HOLD", "reason": "nothing to do"}], "summary": "flat"}'


def add_session(conn: Connection, kind: str = "live", run_name: str = "live") -> None:
    """Session 1, as any revision since 0002 stores it."""
    conn.execute(text(
        "INSERT INTO sessions (date, kind, run_name, mode, venue, starting_balance, "
        "net_pnl, total_fees, total_llm_cost, total_trades, created_at) VALUES "
        "(:d, :k, :r, 'PAPER', 'paper', 1000, 0, 0, 0, 0, :t)"),
        {"d": date(2026, 12, 6), "k": kind, "r": run_name, "t": T0})


@pytest.fixture(params=["sqlite", "postgres"])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the revision before ``trace_blobs``, holding one trace with its text
    inline, upgraded to the head."""
    with database_at(request, tmp_path, BEFORE) as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            add_session(conn)
            conn.execute(text(
                "INSERT INTO llm_traces (session_id, engine, model, prompt, raw_response, "
                "answers, status, tokens_in, tokens_out, cost, latency_ms, created_at) VALUES "
                "(1, 'gemini', 'm', :p, :r, :a, 'ok', 1, 1, 0, 1, :t)"),
                {"p": "old prompt", "r": "old answer",
                 "a": '[{"raw_response": "old answer", "errors": []}]', "t": T0})
        engine.dispose()
        upgrade(url)
        yield url


def test_repeated_texts_are_stored_once_compressed_and_old_rows_still_read(old_db) -> None:
    engine = make_engine(old_db)
    try:
        with session_factory(engine)() as db:
            ids = [add_trace(db, session_id=1, engine="gemini", model="m", prompt=PROMPT,
                             raw_response=ANSWER, created_at=T0,
                             answers=[{"raw_response": "not json", "errors": ["bad"]},
                                      {"raw_response": ANSWER, "errors": []}])
                   for _ in range(3)]
            db.commit()
            blobs = db.execute(select(TraceBlob.size, func.length(TraceBlob.data))).all()
            assert len(blobs) == 3  # the prompt, the answer and the bad answer, once each
            prompt_blob = max(blobs)
            assert prompt_blob[0] == len(PROMPT) and prompt_blob[1] < len(PROMPT) / 10
            stored = db.get(LLMTrace, ids[-1])
            assert stored is not None and stored.prompt == "" and stored.raw_response is None
            for trace_id in ids:
                detail = trace_detail(db, trace_id)
                assert detail is not None
                assert detail["prompt"] == PROMPT and detail["raw_response"] == ANSWER
                assert detail["answers"] == [{"raw_response": "not json", "errors": ["bad"]},
                                             {"raw_response": ANSWER, "errors": []}]
            old = trace_detail(db, 1)
            assert old is not None
            assert (old["prompt"], old["raw_response"]) == ("old prompt", "old answer")
            assert old["answers"] == [{"raw_response": "old answer", "errors": []}]
    finally:
        engine.dispose()


def test_a_prompts_system_part_is_stored_once_apart_and_reads_back_whole(sqlite_url) -> None:
    """Decisions whose context differs share their system part's blob: each stores only
    its context, and the trace reads back the whole prompt."""
    system, contexts = PROMPT.split("\n\n", 1)[0], [f"BTC/USDT last {p}" for p in (1, 2, 3)]
    engine = make_engine(sqlite_url)
    try:
        with session_factory(engine)() as db:
            add_session(db.connection())
            ids = [add_trace(db, session_id=1, engine="gemini", prompt_system=system,
                             prompt=f"{system}\n\n{context}", created_at=T0)
                   for context in contexts]
            db.commit()
            sizes = sorted(db.scalars(select(TraceBlob.size)))
            assert sizes == sorted([len(system), *map(len, contexts)])  # the system part once
            for trace_id, context in zip(ids, contexts, strict=True):
                detail = trace_detail(db, trace_id)
                assert detail is not None and detail["prompt"] == f"{system}\n\n{context}"
    finally:
        engine.dispose()


def test_a_trace_without_a_prompt_writes_no_blob(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    try:
        with session_factory(engine)() as db:
            add_session(db.connection())
            trace_id = add_trace(db, session_id=1, engine="rules", model="rules-v1",
                                 prompt="", raw_response=None, created_at=T0)
            db.commit()
            assert db.scalar(select(func.count()).select_from(TraceBlob)) == 0
            detail = trace_detail(db, trace_id)
            assert detail is not None and detail["prompt"] == "" and detail["raw_response"] is None
    finally:
        engine.dispose()


def test_a_traced_decision_stores_no_empty_fields_and_reads_back_whole(sqlite_url, tmp_path):
    """The trace keeps what the decision said; its unset fields (None, their default) are
    not written, and the decision a restart carries out reads back the same. What it did is
    compact JSON (no blank after a separator)."""
    decision = Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.01,
                                        stop=21000.0, target=23000.0, reason="scripted")],
                        summary="one entry")
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", [22000.0 + i for i in range(210)])
    rt = make_runtime(sqlite_url, [candles], ScriptedEngine([decision]), MAX_SPREAD_PCT=5,
                      MAX_SLIPPAGE_PCT=5, MIN_TARGET_FEE_MULTIPLE=0)
    step(rt, 2)
    with rt.db() as db:
        first, second = db.scalars(select(LLMTrace.decision_json).order_by(LLMTrace.id)).all()
        results = db.scalars(select(LLMTrace.execution_result)).all()
    assert len(results) == 2 and all(
        r is not None and r == json.dumps(json.loads(r), separators=(",", ":")) for r in results)
    assert first is not None and second is not None
    assert "null" not in first and "null" not in second
    assert Decision.model_validate_json(first) == decision
