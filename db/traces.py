"""LLM traces: one self-contained row per decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.orm import Session as OrmSession

from db.core import insert_one, table_of
from db.models import LLMTrace

_TRACES = table_of(LLMTrace)
# One trace is written and then completed at every decision: statements on the table,
# built once, skip the ORM unit of work (nothing reads the trace back as an object).
_ADD = insert(_TRACES)
_SET_RESULT = (update(_TRACES).where(_TRACES.c.id == bindparam("trace_id"))
               .values(execution_result=bindparam("result")))


def add_trace(db: OrmSession | Connection, **fields: object) -> int:
    """Insert a trace, uncommitted; returns its id."""
    return insert_one(db, _ADD, fields)


def set_execution_result(db: OrmSession, trace_id: int, result: str) -> None:
    """Record what a traced decision's execution did, uncommitted."""
    db.execute(_SET_RESULT, {"trace_id": trace_id, "result": result})


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
