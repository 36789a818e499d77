"""Read-only queries behind ``python -m bot replay-live``: one day of a run, as stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession

from db.decision_queries import SessionCandles
from db.models import EquityStep, LLMTrace, Session, Trade
from db.retention import kept_whatever_the_day


def stored_candles(db: OrmSession, session_id: int,
                   warmup: int) -> dict[tuple[str, str], list[tuple]]:
    """The candles the session saw, by (symbol, timeframe): its own and the ``warmup`` its
    run stored before them (``SessionCandles.read``), as (timestamp, o, h, l, c, v) rows,
    oldest first."""
    return SessionCandles.read(db, session_id, warmup).rows()


def day_sessions(db: OrmSession, kind: str, day: object) -> list[Session]:
    """Every session of ``kind`` on ``day`` (a scratch database holds one replay run)."""
    return list(db.scalars(select(Session).where(Session.kind == kind, Session.date == day)))


def decisions(db: OrmSession, session_ids: Sequence[int], *, as_thinned: bool = False
              ) -> list[tuple[datetime, str | None, str | None]]:
    """(time, decision JSON, first request's hash) of every decision of the sessions, oldest
    first; ``as_thinned``: only those retention keeps on a thinned day."""
    query = (select(LLMTrace.created_at, LLMTrace.decision_json, LLMTrace.request_hash)
             .where(LLMTrace.session_id.in_(session_ids)))
    if as_thinned:
        query = query.where(kept_whatever_the_day())
    return [(when, decision, request) for when, decision, request in db.execute(
        query.order_by(LLMTrace.created_at, LLMTrace.id))]


def thinned_holds(db: OrmSession, session_id: int) -> int:
    """How many of the session's decided steps have no trace left: retention thinned its
    day (every decided step writes a trace and an equity step, and only the trace goes)."""
    steps = db.scalar(select(func.count(EquityStep.id))
                      .where(EquityStep.session_id == session_id)) or 0
    traced = db.scalar(select(func.count(LLMTrace.id))
                       .where(LLMTrace.session_id == session_id)) or 0
    return max(0, steps - traced)


def first_step(db: OrmSession, session_id: int) -> datetime | None:
    """When the session's first decided step was, from its equity steps, which retention
    keeps (its first trace may be gone)."""
    return db.scalar(select(func.min(EquityStep.created_at))
                     .where(EquityStep.session_id == session_id))


def fills(db: OrmSession, session_ids: Sequence[int]) -> list[Trade]:
    """Every fill of the sessions, oldest first."""
    return list(db.scalars(select(Trade).where(Trade.session_id.in_(session_ids))
                           .order_by(Trade.timestamp, Trade.id)))
