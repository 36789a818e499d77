"""LLM traces: one self-contained row per decision."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session as OrmSession

from db.models import LLMTrace

_TRACES = LLMTrace.__table__
# One trace is written and then completed at every decision: statements on the table,
# built once, skip the ORM unit of work (nothing reads the trace back as an object).
_ADD = insert(_TRACES)
_SET_RESULT = (update(_TRACES).where(_TRACES.c.id == bindparam("trace_id"))
               .values(execution_result=bindparam("result")))


def add_trace(db: OrmSession, **fields: object) -> int:
    """Insert a trace, uncommitted; returns its id."""
    return db.execute(_ADD, fields).inserted_primary_key[0]


def set_execution_result(db: OrmSession, trace_id: int, result: str) -> None:
    """Record what a traced decision's execution did, uncommitted."""
    db.execute(_SET_RESULT, {"trace_id": trace_id, "result": result})
