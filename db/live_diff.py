"""Read-only queries behind ``python -m bot replay-live``: one day of a run, as stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from db.models import OHLCV, LLMTrace, Session, Trade


def stored_candles(db: OrmSession, session_id: int) -> dict[tuple[str, str], list[tuple]]:
    """The session's stored candles by (symbol, timeframe): (timestamp, o, h, l, c, v) rows,
    oldest first."""
    rows = db.execute(
        select(OHLCV.symbol, OHLCV.timeframe, OHLCV.timestamp, OHLCV.open, OHLCV.high,
               OHLCV.low, OHLCV.close, OHLCV.volume)
        .where(OHLCV.session_id == session_id).order_by(OHLCV.timestamp)).all()
    series: dict[tuple[str, str], list[tuple]] = {}
    for symbol, timeframe, *candle in rows:
        series.setdefault((symbol, timeframe), []).append(tuple(candle))
    return series


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
