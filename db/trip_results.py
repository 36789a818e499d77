"""The scorecard's realized PnL, rolled up: per closed session, the net PnL of the round
trips its fills closed, summed per decision (trace) that opened them (``trip_results``).

Written with the session's performance rollup (``db.performance_rollups.roll_up_closed``),
from the trips its fills fold into on from those the session before left open, so a
decision's realized PnL over a year is its rows (a trip it opened adds to the row of the
session that closed it) and the trips closed since, rather than a fold of every fill of the
run at each look.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.round_trips import RoundTrip
from bot.model.vocabulary import TraceStatus
from db.core import table_of
from db.models import LLMTrace, TripResult

_RESULTS = table_of(TripResult)


def add_results(db: OrmSession, session_id: int, trips: Sequence[RoundTrip]) -> None:
    """Roll up the trips among ``trips`` that closed (a session's), per the decision that
    opened them, in place of any the session had; uncommitted. A trip no decision opened (an
    order placed outside the bot) is no decision's."""
    db.execute(delete(_RESULTS).where(_RESULTS.c.session_id == session_id))
    net: dict[int, float] = defaultdict(float)
    for trip in trips:
        if trip.closed_at is not None and trip.open_trace_id is not None:
            net[trip.open_trace_id] += trip.net_pnl
    if not net:
        return
    decided = {trace_id: at for trace_id, at in db.execute(
        select(LLMTrace.id, LLMTrace.created_at).where(
            LLMTrace.id.in_(list(net)), LLMTrace.status != TraceStatus.ABANDONED))}
    rows = [{"session_id": session_id, "open_trace_id": trace_id, "decided_at": decided[trace_id],
             "net": pnl} for trace_id, pnl in net.items() if trace_id in decided]
    if rows:
        db.execute(insert(_RESULTS), rows)


def _decided_within(sessions: Sequence[int], start: datetime | None,
        end: datetime | None) -> list[ColumnElement[bool]]:
    """The rows of these sessions whose decision lies in [start, end)."""
    where: list[ColumnElement[bool]] = [_RESULTS.c.session_id.in_(sessions)]
    if start is not None:
        where.append(_RESULTS.c.decided_at >= start)
    if end is not None:
        where.append(_RESULTS.c.decided_at < end)
    return where


def rolled_total(db: OrmSession, sessions: Sequence[int], start: datetime | None,
                 end: datetime | None) -> float:
    """The net PnL these sessions' closed trips rolled up for the decisions of [start, end)."""
    if not sessions:
        return 0.0
    return float(db.scalar(select(func.coalesce(func.sum(_RESULTS.c.net), 0.0))
                           .where(*_decided_within(sessions, start, end))) or 0.0)


def rolled_by_decision(db: OrmSession, sessions: Sequence[int], start: datetime | None,
                       end: datetime | None) -> dict[int, float]:
    """Per decision of [start, end): the net PnL these sessions' closed trips rolled up for it."""
    if not sessions:
        return {}
    return {trace_id: float(net) for trace_id, net in db.execute(
        select(_RESULTS.c.open_trace_id, func.sum(_RESULTS.c.net))
        .where(*_decided_within(sessions, start, end)).group_by(_RESULTS.c.open_trace_id))}
