"""A rules step's trace carries each fact once, and every reader reads old and new rows alike.

The equity, exposure and prices of a decided step are its ``equity_steps`` row's; a
decision is stored without its defaults and without an action's reason that repeats the
summary; empty tool calls and no errors are SQL NULL. Rows written before keep their text.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import bindparam, select, text

from bot.engine.schema import Action, ActionType, Decision
from bot.model.scorecard import call_of
from bot.remote import trace as remote_trace
from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.models import EquityStep, LLMTrace, UtcDateTime
from db.queries import recent_decisions
from db.queries_trading import outcome_summary, trace_detail, traces
from db.traces import decision_text, recorded_decision_json
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.test_replay import write_candles
from views import _trace_words as trace_words

STEP_FIGURES = ("equity", "exposure", "prices")
COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


def _stored_rows(url: str) -> list[dict]:
    """Every trace as stored, with the SQL type of its JSON columns' values."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(text(
                "SELECT id, session_id, created_at, decision_json, execution_result, "
                "tool_calls IS NULL AS no_tool_calls, errors IS NULL AS no_errors, "
                "answers IS NULL AS no_answers FROM llm_traces ORDER BY id"))]
    finally:
        engine.dispose()


def test_a_rules_trace_row_stores_no_figure_twice(tmp_path: Path) -> None:
    closes = [22000 + 60 * ((i % 30) - 15) / 15 + i * 0.8 for i in range(260)]
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", closes)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    summary = run_replay(ReplayArgs([candles], url), progress=False)
    assert summary["trades"] > 0  # entries and exits, not only holds
    rows = _stored_rows(url)
    assert len(rows) > 50
    unrealized = 0
    for row in rows:
        result = json.loads(row["execution_result"])
        assert not set(STEP_FIGURES) & set(result), result  # the equity step's
        assert "null" not in row["execution_result"]
        assert result.get("unrealized_pnl", 1.0) != 0.0  # a zero is the default
        unrealized += "unrealized_pnl" in result
        decision = json.loads(row["decision_json"])
        if decision["actions"] == [{"action": "HOLD"}]:  # a lone HOLD's outcome goes unsaid
            assert "actions" not in result, result
        assert decision["summary"]
        for action in decision["actions"]:
            assert action.get("reason") != decision["summary"], row["decision_json"]
            assert action.get("order_type", "limit") != "market", row["decision_json"]
        assert row["no_tool_calls"] and row["no_errors"] and row["no_answers"], row
    assert unrealized > 0  # a step holding a position keeps its unrealized PnL
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            steps = {(s.session_id, s.created_at): s for s in db.scalars(select(EquityStep))}
            holds = 0
            for row in rows:
                detail = trace_detail(db, row["id"])
                assert detail is not None
                read = json.loads(detail["execution_result"])
                found = steps[(detail["session_id"], detail["created_at"])]
                assert (read["equity"], read["exposure"], read["prices"]) == (
                    found.equity, found.exposure, json.loads(found.prices))
                assert "unrealized_pnl" in read
                decision = Decision.model_validate_json(detail["decision_json"])
                assert decision == Decision.from_stored(row["decision_json"])
                if [a.action for a in decision.actions] == [ActionType.HOLD]:
                    holds += 1
                    assert decision.actions[0].reason == decision.summary
                    assert decision.actions[0].order_type == "market"
                    assert read["actions"] == [{"action": "HOLD", "status": "hold"}], read
                    assert outcome_summary(row["execution_result"]) == "HOLD"
            assert holds > 0
    finally:
        engine.dispose()


HOLD_SUMMARY = "BTC/USDT: no entry (5m ema 21333.4/21289.6 macd_hist -6.03602 rsi 59.5539)"


def _old_twin(db, new_id: int) -> int:
    """A copy of trace ``new_id`` as the loop wrote it before: every figure in its result,
    the decision with its defaults and the HOLD's reason, ``[]`` and ``null`` as JSON."""
    row = db.get(LLMTrace, new_id)
    found = db.scalars(select(EquityStep).where(EquityStep.session_id == row.session_id,
                                                EquityStep.created_at == row.created_at)).one()
    decision = {"actions": [{"action": "HOLD", "order_type": "market", "reason": HOLD_SUMMARY}],
                "summary": HOLD_SUMMARY}
    result = {"equity": found.equity, "unrealized_pnl": 0.0, "exposure": found.exposure,
              "prices": json.loads(found.prices),
              "actions": [{"action": "HOLD", "symbol": None, "status": "hold"}]}
    db.execute(text(
        "INSERT INTO llm_traces (session_id, engine, model, prompt, tool_calls, errors, "
        "decision_json, execution_result, status, tokens_in, tokens_out, cost, latency_ms, "
        "created_at) VALUES (:s, 'rules', 'rules-v1', '', '[]', 'null', :d, :r, 'ok', 0, 0, "
        "0, 0.1, :t)").bindparams(bindparam("t", type_=UtcDateTime())),
        {"s": row.session_id, "d": json.dumps(decision, **COMPACT),
         "r": json.dumps(result, **COMPACT), "t": row.created_at})
    db.commit()
    return db.scalar(select(LLMTrace.id).order_by(LLMTrace.id.desc()).limit(1))


def _as_read(db, bot: str, trace_id: int) -> dict:
    """What every reader of a trace makes of it (the remote one as ``bot``'s)."""
    detail = trace_detail(db, trace_id)
    assert detail is not None
    listed = traces(db, detail["session_id"]).set_index("id").loc[trace_id]
    recent = recent_decisions(db, detail["session_id"]).set_index("id").loc[trace_id]
    remote = remote_trace(db, bot, trace_id)
    assert remote is not None
    decision, execution = (trace_words.decision(detail["decision_json"]),
                           trace_words.execution(detail["execution_result"]))
    return {
        "decision": detail["decision_json"], "result": json.loads(detail["execution_result"]),
        "tool_calls": detail["tool_calls"], "errors": detail["errors"],
        "remote": {k: remote[k] for k in ("decision_json", "execution_result", "tool_calls",
                                          "errors")},
        "decision rows": decision.rows.to_dict("records"), "decision line": decision.line,
        "execution rows": execution.rows.to_dict("records"), "execution line": execution.line,
        "listed": (listed["actions"], listed["errors"]),
        "recent": (recent["actions"], recent["outcome"]),
        "recorded": Decision.from_stored(recorded_decision_json(db, trace_id)),
        "call": call_of(detail["decision_json"], "BTC/USDT"),
    }


def test_an_old_row_and_a_new_row_read_the_same(db_url: str, tmp_path: Path) -> None:
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", [21348.9] * 210)
    hold = Decision(actions=[Action(action=ActionType.HOLD, reason=HOLD_SUMMARY)],
                    summary=HOLD_SUMMARY)
    # a live bot's: the remote reader serves only a bot's own live sessions
    rt = make_runtime(db_url, [candles], ScriptedEngine([hold]), kind="live",
                      run_name="default")
    step(rt)
    with rt.db() as db:
        new_id = db.scalar(select(LLMTrace.id))
        assert new_id is not None
        old_id = _old_twin(db, new_id)
        stored = {r["id"]: r for r in _stored_rows(db_url)}
        assert len(stored[new_id]["execution_result"]) < len(stored[old_id]["execution_result"])
        assert len(stored[new_id]["decision_json"]) < len(stored[old_id]["decision_json"])
        bot = rt.settings.bot_name
        new, old = _as_read(db, bot, new_id), _as_read(db, bot, old_id)
    # a HOLD of no symbol names none now: the one difference, which every reader reads alike
    assert new["result"]["actions"] == [{"action": "HOLD", "status": "hold"}]
    assert old["result"]["actions"] == [{"action": "HOLD", "symbol": None, "status": "hold"}]
    assert json.loads(new["remote"].pop("execution_result"))["actions"] == new["result"]["actions"]
    assert json.loads(old["remote"].pop("execution_result"))["actions"] == old["result"]["actions"]
    new["result"]["actions"] = old["result"]["actions"]
    assert new == old
    assert old["recorded"] == hold
    assert old["result"]["equity"] > 0 and old["result"]["prices"] == {"BTC/USDT": 21348.9}
    assert old["tool_calls"] == [] and old["errors"] is None
    assert old["decision rows"][0]["order type"] == "market"
    assert old["decision rows"][0]["reason"] == HOLD_SUMMARY
    assert old["execution line"].startswith("Equity after")


def test_an_acting_decisions_result_reads_its_figures_from_its_equity_step(
        db_url: str, tmp_path: Path) -> None:
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", [22000.0 + i for i in range(210)])
    buy = Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.01,
                                   stop=21000.0, target=23000.0, reason="scripted")],
                   summary="one entry")
    rt = make_runtime(db_url, [candles], ScriptedEngine([buy]), MAX_SPREAD_PCT=5,
                      MAX_SLIPPAGE_PCT=5, MIN_TARGET_FEE_MULTIPLE=0)
    step(rt, 2)
    with rt.db() as db:
        rows = db.execute(select(LLMTrace.id, LLMTrace.session_id, LLMTrace.created_at)
                          .order_by(LLMTrace.id)).all()
        steps = {(s.session_id, s.created_at): s for s in db.scalars(select(EquityStep))}
        read = [trace_detail(db, r.id) for r in rows]
    results = [json.loads(d["execution_result"]) for d in read if d is not None]
    assert [[a["status"] for a in r["actions"]] for r in results] == [["placed"], []]
    for row, result in zip(rows, results, strict=True):
        found = steps[(row.session_id, row.created_at)]
        assert (result["equity"], result["exposure"], result["prices"]) == (
            found.equity, found.exposure, json.loads(found.prices))
    assert results[1]["exposure"] > 0 and results[1]["unrealized_pnl"] != 0.0


def test_a_decision_reads_back_the_same_from_its_compact_form() -> None:
    cases = [
        Decision(actions=[Action(action=ActionType.HOLD, reason=HOLD_SUMMARY)],
                 summary=HOLD_SUMMARY),
        Decision(actions=[Action(action=ActionType.HOLD)], summary="flat"),  # reason ""
        Decision(actions=[Action(action=ActionType.HOLD, reason="x")]),  # summary ""
        Decision(actions=[Action(action=ActionType.HOLD)]),
        Decision(),
        Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.1,
                                 order_type="limit", price=100.0, reason="a", confidence=0.0),
                          Action(action=ActionType.HOLD, symbol="ETH/USDT", reason="both")],
                 summary="both"),
    ]
    for decision in cases:
        stored = decision.stored_json()
        assert Decision.from_stored(stored) == decision, stored
        # a row written before (every field but the None ones) reads as it did
        assert Decision.from_stored(decision.model_dump_json(exclude_none=True)) == decision


def test_a_foreign_decision_reads_as_written() -> None:
    """A row the loop did not write (a key no decision has, an action's unknown field) is
    shown as stored: rebuilt through the model, what it says beyond a decision would go."""
    for foreign in ('{"reason": "<b>why</b>"}', '{"actions": [{"action": "HOLD", "why": "x"}]}',
                    '["not", "an", "object"]'):
        assert decision_text(foreign) == foreign
    assert json.loads(decision_text('{"actions":[{"action":"HOLD"}],"summary":"s"}')) == {
        "actions": [{"action": "HOLD", "order_type": "market", "reason": "s"}], "summary": "s"}
