"""The scorecard's rollup: each day's decisions, once every horizon of them is settled
(``db.scorecard.settle_scores``), summed into a few narrow rows per session and day
(``decision_score_days``, ``decision_score_groups``), so the scorecard of a year is a GROUP
BY over a few thousand rows rather than a parse of every trace.

The scorecard's figures compose by addition (``bot.model.scorecard.Tally``): a span's are
its whole days' rows summed by the database, merged with those of its decisions scored
from their traces (the days the span cuts, and the traces after the run's tip).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import Session as OrmSession

from bot.model.scorecard import HORIZONS, DecisionOutcome, Group, Tally
from bot.model.vocabulary import TraceStatus
from db.core import table_of
from db.models import DecisionScoreDay, DecisionScoreGroup, DecisionScoreTip, LLMTrace, Session

_DAYS = table_of(DecisionScoreDay)
_GROUPS = table_of(DecisionScoreGroup)
_TIPS = table_of(DecisionScoreTip)
_GROUP_FIGURES = ("count", "scored", "hits", "directional", "forward_sum", "forward_pnl")
_SIDES = ("llm", "shadow")  # besides "call": the LLM's calls and its shadow's


def tip_of(db: OrmSession | Connection, kind: str, run_name: str) -> datetime | None:
    return db.scalar(select(_TIPS.c.through).where(_TIPS.c.kind == kind,
                                                   _TIPS.c.run_name == run_name))


def set_tip(db: OrmSession | Connection, kind: str, run_name: str, through: datetime) -> None:
    """Uncommitted, with the rows it covers."""
    moved = db.execute(update(_TIPS).where(_TIPS.c.kind == kind, _TIPS.c.run_name == run_name)
                       .values(through=through))
    if not getattr(moved, "rowcount", 0):
        db.execute(insert(_TIPS).values(kind=kind, run_name=run_name, through=through))


def rolled_through(db: OrmSession | Connection, ids: Sequence[int]) -> datetime | None:
    """The rollup tip of the run these sessions are (None: not one run, or not rolled up)."""
    runs = db.execute(select(Session.kind, Session.run_name)
                      .where(Session.id.in_(ids)).distinct()).all()
    return tip_of(db, runs[0].kind, runs[0].run_name) if len(runs) == 1 else None


def session_decisions(db: OrmSession | Connection, session_id: int, kind: str,
                      run_name: str) -> int:
    """How many decisions the session made, abandoned calls aside: those its run's rollup
    counted (retention thins their traces only once they are), and the traces after its
    tip."""
    rolled = db.scalar(select(func.coalesce(func.sum(_DAYS.c.decisions), 0))
                       .where(_DAYS.c.session_id == session_id))
    since = [LLMTrace.session_id == session_id, LLMTrace.status != TraceStatus.ABANDONED]
    tip = tip_of(db, kind, run_name)
    if tip is not None:
        since.append(LLMTrace.created_at >= tip)
    return int(rolled or 0) + int(db.scalar(select(func.count(LLMTrace.id)).where(*since)) or 0)


def add_days(db: OrmSession | Connection, found: Sequence[DecisionOutcome]) -> None:
    """Roll these decisions up into their sessions' days, uncommitted."""
    by_day: dict[tuple[int, date], Tally] = defaultdict(Tally)
    for outcome in found:
        record = outcome.record
        assert record.session_id is not None, "a decision read from a trace has its session"
        by_day[(record.session_id, record.created_at.date())].add(outcome)
    days: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for (session_id, day), counted in by_day.items():
        days.append({"session_id": session_id, "day": day, "decisions": counted.decisions,
                     "cost": counted.cost, "tokens": counted.tokens,
                     "shadowed": counted.shadowed, "shadowed_cost": counted.shadowed_cost,
                     **{f"pending_{h}": counted.pending[h] for h in HORIZONS}})
        keyed = {("call", action, bucket): per_horizon
                 for (action, bucket), per_horizon in counted.by_call.items()}
        if counted.shadowed:
            keyed |= {("llm", "", ""): counted.llm, ("shadow", "", ""): counted.shadow}
        groups += [{"session_id": session_id, "day": day, "side": side, "action": action,
                    "confidence": bucket, "horizon": horizon,
                    **{name: getattr(group, name) for name in _GROUP_FIGURES}}
                   for (side, action, bucket), per_horizon in keyed.items()
                   for horizon, group in per_horizon.items()]
    if days:
        db.execute(insert(_DAYS), days)
    if groups:
        db.execute(insert(_GROUPS), groups)


def rolled_tally(db: OrmSession | Connection, ids: Sequence[int], first: date | None,
                 last: date) -> Tally:
    """The rolled-up figures of these sessions' days from ``first`` (None: the first) to
    ``last``, both included; realized PnL aside."""
    counted = Tally()
    days = [_DAYS.c.session_id.in_(ids), _DAYS.c.day <= last]
    if first is not None:
        days.append(_DAYS.c.day >= first)
    totals = [func.sum(_DAYS.c[name]) for name in
              ("decisions", "cost", "tokens", "shadowed", "shadowed_cost",
               *(f"pending_{h}" for h in HORIZONS))]
    for row in db.execute(select(_DAYS.c.day, *totals).where(*days).group_by(_DAYS.c.day)):
        day, decisions, cost, tokens, shadowed, shadowed_cost, *pending = tuple(row)
        counted.days.add(day)
        counted.decisions += decisions
        counted.cost += cost
        counted.tokens += tokens
        counted.shadowed += shadowed
        counted.shadowed_cost += shadowed_cost
        for horizon, waiting in zip(HORIZONS, pending, strict=True):
            counted.pending[horizon] += waiting
    spans = [_GROUPS.c.session_id.in_(ids), _GROUPS.c.day <= last]
    if first is not None:
        spans.append(_GROUPS.c.day >= first)
    keys = (_GROUPS.c.side, _GROUPS.c.action, _GROUPS.c.confidence, _GROUPS.c.horizon)
    for row in db.execute(select(*keys, *(func.sum(_GROUPS.c[name]) for name in _GROUP_FIGURES))
                          .where(*spans).group_by(*keys)):
        side, action, bucket, horizon, *figures = tuple(row)
        if side == "call":
            target = counted.by_call.setdefault(
                (action, bucket), {name: Group() for name in HORIZONS})[horizon]
        else:
            target = (counted.llm if side == "llm" else counted.shadow)[horizon]
        target.merge(Group(int(figures[0]), int(figures[1]), int(figures[2]),
                           int(figures[3]), float(figures[4]), float(figures[5])))
    return counted
