"""LLM traces: one self-contained row per decision."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession

from bot.engine.schema import Action, Decision
from db.core import insert_one, table_of
from db.models import EquityStep, LLMTrace, TraceBlob

_TRACES = table_of(LLMTrace)
_BLOBS = table_of(TraceBlob)
_STEPS = table_of(EquityStep)
# One trace is written and then completed at every decision: statements on the table,
# built once, skip the ORM unit of work (nothing reads the trace back as an object).
_ADD = insert(_TRACES)
_SET_RESULT = (update(_TRACES).where(_TRACES.c.id == bindparam("trace_id"))
               .values(execution_result=bindparam("result")))


class Spent(Protocol):
    """What an engine call cost: an engine's result has these."""

    cost: float
    tokens_in: int
    tokens_out: int
    cache_write_tokens: int
    cache_read_tokens: int


_SPENT_FIELDS = ("cost", "tokens_in", "tokens_out", "cache_write_tokens", "cache_read_tokens")
_SET_SPENT = (update(_TRACES).where(_TRACES.c.id == bindparam("trace_id"))
              .values({name: bindparam(f"spent_{name}") for name in _SPENT_FIELDS}))


def set_spent(db: OrmSession | Connection, trace_id: int, spent: Spent) -> None:
    """Record what a decision's engine call cost, uncommitted: an abandoned decision's call
    answers after its trace was written."""
    db.execute(_SET_SPENT, {"trace_id": trace_id,
                            **{f"spent_{name}": getattr(spent, name) for name in _SPENT_FIELDS}})


# between a prompt's system part and the rest (``bot.engine.prompt.RenderedPrompt.text``)
SYSTEM_JOIN = "\n\n"
_ADD_BLOB = {
    "sqlite": sqlite_insert(_BLOBS).on_conflict_do_nothing(index_elements=["hash"]),
    "postgresql": postgresql_insert(_BLOBS).on_conflict_do_nothing(index_elements=["hash"]),
}


def add_trace(db: OrmSession | Connection, **fields: object) -> int:
    """Insert a trace, uncommitted; returns its id.

    Its prompt and answers go to ``trace_blobs`` (stored once, compressed) and the row
    names them: ``prompt_hash``, ``response_hash``, and each answer's ``response_hash``.
    ``prompt_system``: the system part the prompt begins with (then a blank line), the same
    at every decision; it is stored apart (``system_hash``) and ``prompt_hash`` names the
    rest, so a decision stores only what changed and each blob stays small enough to share
    its page.
    """
    prompt, response = fields.pop("prompt", None), fields.pop("raw_response", None)
    system = fields.pop("prompt_system", None)
    fields["prompt"] = ""
    if prompt or response or fields.get("answers"):
        lock_blobs(db)
    if isinstance(prompt, str) and isinstance(system, str) and system and \
            prompt.startswith(system + SYSTEM_JOIN):
        fields["system_hash"] = store_blob(db, system)
        prompt = prompt[len(system) + len(SYSTEM_JOIN):]
    if isinstance(prompt, str) and prompt:
        fields["prompt_hash"] = store_blob(db, prompt)
    if isinstance(response, str) and response:
        fields["response_hash"] = store_blob(db, response)
    answers = fields.get("answers")
    if isinstance(answers, list):
        fields["answers"] = [_answer_by_hash(db, answer) for answer in answers]
    return insert_one(db, _ADD, fields)


def set_execution_result(db: OrmSession, trace_id: int, result: str) -> None:
    """Record what a traced decision's execution did, uncommitted."""
    db.execute(_SET_RESULT, {"trace_id": trace_id, "result": result})


_ADD_STEP = insert(_STEPS)
# The figures of a decided step its equity step holds: its trace's result leaves them out.
STEP_FIGURES = ("equity", "exposure", "prices")
# The outcomes of a decision that is one HOLD of no symbol, most steps of the rules engine:
# a result that names no outcomes has these.
LONE_HOLD: list[dict[str, str]] = [{"action": "HOLD", "status": "hold"}]


def add_equity_step(db: OrmSession | Connection, session_id: int, created_at: datetime,
                    equity: float, exposure: float, prices: Mapping[str, float]) -> None:
    """Record the account a decided step left (``db.queries_replays`` reads the curve and the
    summary from these rows), uncommitted: in the transaction of the trace's result."""
    db.execute(_ADD_STEP, {"session_id": session_id, "created_at": created_at,
                           "equity": equity, "exposure": exposure,
                           "prices": json.dumps(dict(prices))})


def _answer_by_hash(db: OrmSession | Connection, answer: object) -> object:
    if not isinstance(answer, dict) or not isinstance(answer.get("raw_response"), str):
        return answer
    stored = {k: v for k, v in answer.items() if k != "raw_response"}
    return {**stored, "response_hash": store_blob(db, answer["raw_response"])}


def store_blob(db: OrmSession | Connection, text: str) -> str:
    """Store ``text`` once (uncommitted) and return its key: a text seen before is not
    written again, by this bot or another. The trace naming it is written under
    ``lock_blobs``."""
    data = text.encode()
    key = hashlib.sha256(data).hexdigest()
    db.execute(_ADD_BLOB[_dialect(db)], {"hash": key, "data": zlib.compress(data, 6),
                                         "size": len(text)})
    return key


def _dialect(db: OrmSession | Connection) -> str:
    return (db.get_bind() if isinstance(db, OrmSession) else db).dialect.name


# one key per database: every trace writer shares it, a prune's drop of blobs holds it alone
BLOBS_LOCK_KEY = int.from_bytes(b"tdblobs.", "big", signed=True)
_LOCK_BLOBS = {False: select(func.pg_advisory_xact_lock_shared(BLOBS_LOCK_KEY)),
               True: select(func.pg_advisory_xact_lock(BLOBS_LOCK_KEY))}


def lock_blobs(db: OrmSession | Connection, *, alone: bool = False) -> None:
    """Hold ``trace_blobs`` against a prune until this transaction ends (PostgreSQL).

    Storing a blob that is there already writes and locks nothing, so under READ COMMITTED
    a prune that read the names before the trace naming it committed would delete the blob
    from under that trace. A writer holds the lock shared from its first blob to its commit
    (writers never wait for each other), and a prune holds it ``alone`` from before it reads
    the names to its commit: it waits for the traces being written and sees them, and a
    writer that comes during it waits, then finds the blob gone and stores it anew. SQLite
    needs none: it has one writer at a time, and a prune takes the write lock with its
    first delete, before it reads the names.
    """
    if _dialect(db) == "postgresql":
        db.execute(_LOCK_BLOBS[alone])


_BLOB_DATA = select(_BLOBS.c.hash, _BLOBS.c.data).where(
    _BLOBS.c.hash.in_(bindparam("keys", expanding=True)))


def trace_texts(db: OrmSession | Connection, trace: Mapping[str, Any]) -> dict[str, Any]:
    """A trace's prompt, answer and answers as text, whether the row holds them inline
    (rows written before ``trace_blobs``) or by hash."""
    answers = trace.get("answers")
    listed = [a for a in answers or [] if isinstance(a, dict)]
    keys = {key for key in (trace.get("prompt_hash"), trace.get("system_hash"),
                            trace.get("response_hash"), *(a.get("response_hash") for a in listed))
            if isinstance(key, str)}
    texts: dict[str, str] = {key: zlib.decompress(data).decode() for key, data in
                             db.execute(_BLOB_DATA, {"keys": sorted(keys)})} if keys else {}

    def answer_text(answer: object) -> object:
        if not isinstance(answer, dict) or "response_hash" not in answer:
            return answer
        rest = {k: v for k, v in answer.items() if k != "response_hash"}
        return {**rest, "raw_response": texts.get(answer["response_hash"], "")}

    prompt_hash, response_hash = trace.get("prompt_hash"), trace.get("response_hash")
    prompt = texts[prompt_hash] if prompt_hash in texts else trace.get("prompt") or ""
    system_hash = trace.get("system_hash")
    if system_hash in texts:
        prompt = texts[system_hash] + SYSTEM_JOIN + prompt
    return {
        "prompt": prompt,
        "raw_response": texts[response_hash] if response_hash in texts
        else trace.get("raw_response"),
        "answers": None if answers is None else [answer_text(a) for a in answers],
    }


# Built once and selecting two plain columns: it runs at every decision and almost always
# finds nothing, so building the select and the ORM's machinery were most of its cost.
_TRACED_AT = (select(_TRACES.c.id, _TRACES.c.execution_result)
              .where(_TRACES.c.session_id.in_(bindparam("session_ids", expanding=True)),
                     _TRACES.c.created_at == bindparam("now"), _TRACES.c.status != "abandoned")
              .order_by(_TRACES.c.id.desc()).limit(1))


def traced_at(db: OrmSession | Connection, session_ids: list[int],
              now: datetime) -> Row[int, str | None] | None:
    """The newest decision (id, execution result) traced at exactly ``now`` in these
    sessions, abandoned ones aside."""
    return db.execute(_TRACED_AT, {"session_ids": session_ids, "now": now}).first()


_STEP_AT = (select(_STEPS.c.equity, _STEPS.c.exposure, _STEPS.c.prices)
            .where(_STEPS.c.session_id == bindparam("session_id"),
                   _STEPS.c.created_at == bindparam("created_at"))
            .order_by(_STEPS.c.id.desc()).limit(1))


def execution_result(db: OrmSession | Connection, session_id: int, created_at: datetime,
                     stored: str | None) -> str | None:
    """A trace's execution result as its readers take it: the account the decision left
    (equity, unrealized PnL, exposure, prices), then each action's outcome.

    A result written since ``equity_steps`` leaves the step's figures to its equity step
    (the same session and clock), an unrealized PnL of zero unsaid and the outcomes of a
    lone HOLD (``LONE_HOLD``) unnamed; one written before states them itself. Text that is
    no such result is returned as it is.
    """
    try:
        result = json.loads(stored) if stored else None
    except ValueError:
        return stored
    if not isinstance(result, dict) or "equity" in result:
        return stored
    step = db.execute(_STEP_AT, {"session_id": session_id, "created_at": created_at}).first()
    figures = {} if step is None else {
        "equity": step.equity, "unrealized_pnl": result.pop("unrealized_pnl", 0.0),
        "exposure": step.exposure, "prices": json.loads(step.prices)}
    return json.dumps({**figures, **result, "actions": outcomes_of(result)},
                      separators=(",", ":"))


def outcomes_of(result: Mapping[str, Any]) -> Any:
    """A stored result's outcomes: a result naming none is a lone HOLD's."""
    return result.get("actions", LONE_HOLD)


def decision_text(stored: str | None) -> str | None:
    """A trace's decision (or shadow decision) as its readers take it: every field but the
    None ones, each action with its reason (``Decision.stored_json`` leaves out the defaults
    and a reason that is the summary). Text that is no decision is returned as it is."""
    if not stored:
        return stored
    try:
        if not _decision_fields_only(json.loads(stored)):
            return stored  # a foreign row: shown as written, nothing it says dropped
        return Decision.from_stored(stored).model_dump_json(exclude_none=True)
    except (ValueError, AttributeError, TypeError):
        return stored


def _decision_fields_only(stored: object) -> bool:
    """Whether ``stored`` names only a decision's fields and its actions only an action's:
    the model ignores any other, which a rebuilt text would then leave out."""
    if not isinstance(stored, dict) or not set(stored) <= set(Decision.model_fields):
        return False
    actions = stored.get("actions", [])
    return isinstance(actions, list) and all(
        isinstance(item, dict) and set(item) <= set(Action.model_fields) for item in actions)


_DECISION_JSON = select(_TRACES.c.decision_json).where(_TRACES.c.id == bindparam("trace_id"))


def recorded_decision_json(db: OrmSession | Connection, trace_id: int) -> str:
    """The decision a trace recorded (one that acted has it)."""
    found = db.scalar(_DECISION_JSON, {"trace_id": trace_id})
    assert found is not None, f"trace {trace_id} recorded no decision"
    return found


_NEWEST_TRACED = select(func.max(_TRACES.c.created_at)).where(
    _TRACES.c.session_id.in_(bindparam("session_ids", expanding=True)),
    _TRACES.c.status != "abandoned")
_TRACED_COST = select(func.coalesce(func.sum(_TRACES.c.cost), 0.0)).where(
    _TRACES.c.session_id == bindparam("session_id"))


def newest_traced_at(db: OrmSession | Connection, session_ids: list[int]) -> datetime | None:
    """The latest clock ``traced_at`` could find a decision at in these sessions."""
    return db.scalar(_NEWEST_TRACED, {"session_ids": session_ids})


def traced_cost(db: OrmSession | Connection, session_id: int) -> float:
    """The LLM cost of every trace of one session."""
    return float(db.scalar(_TRACED_COST, {"session_id": session_id}) or 0.0)
