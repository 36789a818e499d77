"""LLM traces: one self-contained row per decision."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession

from db.models import LLMTrace


def add_trace(db: OrmSession, **fields: object) -> LLMTrace:
    trace = LLMTrace(**fields)
    db.add(trace)
    db.flush()
    return trace
