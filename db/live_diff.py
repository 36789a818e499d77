"""Read-only queries behind ``python -m bot replay-live``: one day of a run, as stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from db.decision_queries import SessionCandles
from db.models import LLMTrace, Session, Trade


def stored_candles(db: OrmSession, session_id: int,
                   warmup: int) -> dict[tuple[str, str], list[tuple]]:
    """The candles the session saw, by (symbol, timeframe): its own and the ``warmup`` its
    run stored before them (``SessionCandles.read``), as (timestamp, o, h, l, c, v) rows,
    oldest first."""
    return SessionCandles.read(db, session_id, warmup).rows()


def day_sessions(db: OrmSession, kind: str, day: object) -> list[Session]:
    """Every session of ``kind`` on ``day`` (a scratch database holds one replay run)."""
    return list(db.scalars(select(Session).where(Session.kind == kind, Session.date == day)))


def decisions(db: OrmSession,
              session_ids: Sequence[int]) -> list[tuple[datetime, str | None, str | None]]:
    """(time, decision JSON, first request's hash) of every decision of the sessions, oldest
    first."""
    return [(when, decision, request) for when, decision, request in db.execute(
        select(LLMTrace.created_at, LLMTrace.decision_json, LLMTrace.request_hash)
        .where(LLMTrace.session_id.in_(session_ids)).order_by(LLMTrace.created_at, LLMTrace.id))]


def fills(db: OrmSession, session_ids: Sequence[int]) -> list[Trade]:
    """Every fill of the sessions, oldest first."""
    return list(db.scalars(select(Trade).where(Trade.session_id.in_(session_ids))
                           .order_by(Trade.timestamp, Trade.id)))
