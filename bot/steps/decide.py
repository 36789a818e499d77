"""Step 5: ask the engine, validate, check risk, execute, and write one trace.

The engine call runs on a worker thread while this thread keeps watching for a close-all or
stop: a slow LLM call is abandoned (and traced as such) rather than holding the operator up.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session as OrmSession

from bot.account import exposure_by_symbol, quote_balance, risk_state, unrealized_pnl
from bot.actions import execute_action, hold_outcome
from bot.decision_context import build_context
from bot.engine.base import EngineResult
from bot.engine.schema import ActionType, Decision
from bot.engine.validation import validate_decision
from bot.model.vocabulary import Outcome, TraceStatus
from bot.runtime import Runtime
from bot.secrets_filter import scrub, scrub_deep
from db.engine import bound_engine
from db.performance_rollups import add_rolled_llm_cost
from db.traces import (
    LONE_HOLD,
    STEP_FIGURES,
    add_equity_step,
    add_trace,
    recorded_decision_json,
    set_execution_result,
    set_spent,
)

POLL_SECONDS = 0.2
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")


def decide_and_execute(rt: Runtime) -> None:
    """Reads and the trace on one Core connection; an acting decision then executes in an
    ORM session (orders and plans are ORM rows). Most steps only hold, and a session's
    machinery cost more than their reads."""
    now = rt.now()
    with bound_engine(rt.db).connect() as conn:
        recorded = recorded_decision(rt, conn, now)
        if recorded is not None and recorded.execution_result is not None:
            return  # a restart redoing this clock: the decision was made and carried out
        cash = quote_balance(rt)
        equity = cash + sum(
            h.quantity * (rt.quotes[s].last if s in rt.quotes else h.avg_price)
            for s, h in rt.book.open_items().items()
        )
        context = build_context(conn, rt.settings, rt.session_id, now, equity, cash,
                                traced_cost=rt.store.traces.session_cost(conn, rt.session_id),
                                store=rt.store,
                                books={s: quote.book for s, quote in rt.quotes.items()})
        if recorded is None:
            acting = _decide(rt, conn, context, equity, now)
            if acting is None:
                return
            trace_id, decision, validated = acting
        else:
            # A crash fell between the trace and its execution: carry out the recorded
            # decision (its entries keep their client ids, so what already went out is not
            # sent twice).
            trace_id, validated = recorded.id, None
            decision = Decision.from_stored(recorded_decision_json(conn, trace_id))
    with rt.db() as db:
        _execute(rt, db, trace_id, now, decision, context, equity, validated)


def recorded_decision(rt: Runtime, db: Connection, now: datetime) -> Row[int, str | None] | None:
    """This run's decision already traced at this very clock (its id and outcome), if any.

    A simulated clock only moves after an iteration completes, so a restarted replay or
    paper run redoes the interrupted iteration at the same clock; the decision it recorded
    then must not be made (and executed) a second time. Abandoned decisions did nothing
    and are made again. The runtime's memory of its traces spares the lookup at the clocks
    no trace can have (``bot.decision_memory``).
    """
    return rt.store.traces.recorded_at(db, rt.session_ids(db), now)


def _decide(rt: Runtime, db: Connection, context, equity: float,
            now: datetime) -> tuple[int, Decision, tuple[list, list]] | None:
    """Ask the engine and trace its decision; what is left to carry out, if anything.

    A decision that sends nothing (HOLDs and refused actions: most steps) is traced with its
    outcome in one insert. One that acts is traced and committed first, so a crash while its
    orders go out leaves the decision for the restart to finish rather than to make again.
    """
    rt.events.llm_spent(context, rt.settings.llm_session_cost_cap)
    started = time.perf_counter()
    result = _run_engine(rt, db, context)
    if isinstance(result, Future):
        abandoned = add_trace(
            db, session_id=rt.session_id, engine=rt.engine.name, status=TraceStatus.ABANDONED,
            prompt="", errors=["abandoned: an operator close-all/stop arrived first"],
            latency_ms=(time.perf_counter() - started) * 1000, created_at=now,
        )
        db.commit()
        rt.abandoned_calls.append((rt.session_id, abandoned, result))
        return None
    if result.skipped:
        return None
    valid, rejected = validate_decision(result.decision, context, rt.settings)
    acts = any(action.action is not ActionType.HOLD for action in valid)
    account = None if acts else _account(
        rt, equity, _refusals(rejected) + [hold_outcome(action) for action in valid])
    # a secret that reached the model's text (a key pasted into a note, echoed back) is
    # stored masked, as logs and pages show it
    secrets = rt.secrets
    trace_id = add_trace(
        db, session_id=rt.session_id, engine=result.engine, model=result.model,
        prompt=scrub(result.prompt, secrets), prompt_system=scrub(result.prompt_system, secrets),
        # what is empty is SQL NULL: it needs no bytes, and every reader reads it as empty
        tool_calls=scrub_deep(result.tool_calls, secrets) or None,
        raw_response=None if result.raw_response is None else scrub(result.raw_response, secrets),
        answers=scrub_deep(result.answers, secrets) or None,
        decision_json=scrub(result.decision.stored_json(), secrets),
        errors=scrub_deep([*result.errors, *result.notes], secrets) or None,
        status=TraceStatus.OK if not rejected and not result.errors else TraceStatus.REJECTED,
        tokens_in=result.tokens_in, tokens_out=result.tokens_out, cost=result.cost,
        cache_write_tokens=result.cache_write_tokens, cache_read_tokens=result.cache_read_tokens,
        latency_ms=result.latency_ms, created_at=now, provider=result.provider,
        model_version=result.model_version, temperature=result.temperature,
        prompt_version=result.prompt_version, request_hash=result.request_hash,
        price_source=result.price_source, shadow_decision=_shadow_decision(rt, context),
        execution_result=None if account is None else _result_json(account),
    )
    if account is not None:
        _add_step(db, rt, now, account)
    if result.cost:
        rt.store.apply_llm_cost(db, rt.session_id, result.cost, now)  # with the trace
    db.commit()
    rt.store.traces.note_trace(rt.session_id, now, result.cost)
    return (trace_id, result.decision, (valid, rejected)) if acts else None


def book_abandoned_calls(rt: Runtime) -> None:
    """Book what the calls abandoned for an urgent command cost, once they answered: the
    provider charges them all the same, so the session's LLM cost (its figures and its cost
    cap) counts them, on their traces. The loop asks at every iteration, paused or not (a
    close-all, which abandons one, pauses the bot); a call still running waits for the next."""
    waiting, now = [], rt.now()
    with bound_engine(rt.db).connect() as conn:
        for session_id, trace_id, call in rt.abandoned_calls:
            if not call.done():
                waiting.append((session_id, trace_id, call))
            elif not call.cancelled() and call.exception() is None:
                result = call.result()
                set_spent(conn, trace_id, result)
                if result.cost:
                    rt.store.apply_llm_cost(conn, session_id, result.cost, now)
                    add_rolled_llm_cost(conn, session_id, result.cost)
                conn.commit()
                rt.store.traces.note_trace(session_id, now, result.cost)
    rt.abandoned_calls = waiting


def _shadow_decision(rt: Runtime, context) -> str | None:
    """The shadow engine's decision on the same context, as JSON for the trace; it is only
    recorded and scored, never executed. A shadow that fails costs the decision nothing."""
    if rt.shadow is None:
        return None
    try:
        return rt.shadow.decide(context).decision.stored_json()
    except Exception as exc:
        rt.note_error("shadow engine", exc)
        return None


def _execute(rt: Runtime, db, trace_id: int, now: datetime, decision: Decision, context,
             equity: float, validated: tuple[list, list] | None = None) -> None:
    """Validate, risk-check and execute a traced decision; its outcome lands on the trace.

    The risk state is read only for entries (the only actions it can refuse), fresh for
    each, so a HOLD costs no account queries. An action may leave its last writes to the
    next commit: the one before the next action (which may fail and roll back), or the
    outcome's.
    """
    valid, rejected = validated or validate_decision(decision, context, rt.settings)
    outcomes = _refusals(rejected)
    for index, action in enumerate(valid):
        if index:
            db.commit()
        state = (risk_state(rt, db, equity, context.quote_balance)
                 if action.action is ActionType.BUY else None)
        try:
            outcomes.append(execute_action(rt, db, action, trace_id, state, index))
        except Exception as exc:
            db.rollback()
            rt.note_error(f"executing {action.action}", exc)
            outcomes.append({"action": action.action.value, "status": Outcome.ERROR,
                             "detail": f"{type(exc).__name__}: {rt.words(exc)}"})
    account = _account(rt, equity, outcomes)
    set_execution_result(db, trace_id, _result_json(account))
    _add_step(db, rt, now, account)
    db.commit()


def _account(rt: Runtime, equity: float, outcomes: list[dict]) -> dict:
    """The account as the decision left it, and each action's outcome: the step's equity
    step and its trace's ``execution_result`` store it between them."""
    return {"equity": round(equity, 8), "unrealized_pnl": round(unrealized_pnl(rt), 8),
            "exposure": round(sum(exposure_by_symbol(rt).values()), 8),
            "prices": {s: q.last for s, q in rt.quotes.items()}, "actions": outcomes}


def _result_json(account: dict) -> str:
    """The ``execution_result`` as stored: compact JSON, one written at every step. The
    figures the step's equity step holds are left to it (``db.traces.execution_result``
    puts them back for the readers), and so are an unrealized PnL of zero and the outcomes
    of a lone HOLD (``LONE_HOLD``)."""
    stored = {key: value for key, value in account.items() if key not in STEP_FIGURES}
    if not stored["unrealized_pnl"]:
        del stored["unrealized_pnl"]
    if stored["actions"] == LONE_HOLD:
        del stored["actions"]
    return json.dumps(stored, default=str, separators=(",", ":"))


def _add_step(db: OrmSession | Connection, rt: Runtime, now: datetime, account: dict) -> None:
    add_equity_step(db, rt.session_id, now, account["equity"], account["exposure"],
                    account["prices"])


def _refusals(rejected: list) -> list[dict]:
    return [{"status": Outcome.INVALID, **item} for item in _jsonable(rejected)]


def _jsonable(rejected: list) -> list[dict]:
    items = []
    for entry in rejected:
        if isinstance(entry, dict):
            action = entry.get("action")
            if isinstance(action, BaseModel):
                entry = {**entry, "action": action.model_dump(mode="json", exclude_none=True)}
            items.append(entry)
        else:
            items.append({"detail": str(entry)})
    return items


def _run_engine(rt: Runtime, db: Connection,
                context) -> EngineResult | Future[EngineResult]:
    """The engine's answer; the call itself, abandoned, when an urgent command arrived
    while it was thinking.

    A live bot asks on a worker thread and keeps watching for commands: an LLM may think
    for seconds, and the step's read transaction is ended first rather than held idle.
    """
    if rt.urgent_check is None:
        return rt.engine.decide(context)
    db.commit()
    future: Future[EngineResult] = _executor.submit(rt.engine.decide, context)
    while True:
        try:
            return future.result(timeout=POLL_SECONDS)
        except TimeoutError:
            if rt.urgent_check():
                future.cancel()
                return future
