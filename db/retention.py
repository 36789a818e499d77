"""Retention: full traces and ticks for the kept days; what is older is thinned.

A session older than the cut keeps every trace that caused something (an order, a fill, a
plan, a plan's version), its last tick of each symbol (the day's closing prices), its
candles, fills, plans, equity steps and the day's aggregates; its other traces (holds, refusals, abandoned
decisions) and ticks go, then the prompts and answers no kept trace names. A trace that
cost something keeps its row, its prompt and answers dropped: the day's LLM cost, which its
figures are read from (the Overview, the MCP tools, a span cutting the day), stays whole. Never thinned:
a session holding an active plan, and a replay run not finished (or with no clock to say
so), whose resume reads its traces at the clock it stopped at, a day not rolled up yet, and
a trace the scorecard has not scored yet. A finished replay keeps its ticks too: they are
its step count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Delete,
    Select,
    Update,
    and_,
    delete,
    exists,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import aliased

from db.core import table_of
from db.models import (
    DecisionScoreTip,
    LLMTrace,
    MarketData,
    Order,
    PaperClock,
    PerformanceRollup,
    Session,
    TraceBlob,
    Trade,
    TradePlan,
    TradePlanVersion,
)
from db.plans import ACTIVE
from db.traces import lock_blobs

_TRACES = table_of(LLMTrace)
_TICKS = table_of(MarketData)
_BLOBS = table_of(TraceBlob)
BLOB_BATCH = 500


@dataclass(frozen=True)
class Pruned:
    sessions: int
    traces: int
    market_data: int
    blobs: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _old_sessions(before: date) -> Select:
    """Sessions dated before ``before`` that nothing still running needs, and whose day is
    rolled up: its figures are read from the rollup from then on. A day without one is
    still open (a bot west of UTC trades in yesterday's date at 02:00 UTC) or not yet
    rolled up, and is kept whole."""
    finished = select(PaperClock.account).where(PaperClock.finished_at.is_not(None))
    active = select(TradePlan.session_id).where(TradePlan.status.in_(ACTIVE))
    return select(Session.id).where(
        Session.date < before, Session.id.not_in(active),
        Session.id.in_(select(PerformanceRollup.session_id)),
        or_(Session.kind != "replay", Session.run_name.in_(finished)))


_COSTED = LLMTrace.cost > 0


def caused() -> list[Select]:
    """The ids of the traces that caused something (an order, a fill, a plan, or a plan's
    version: a moved stop sends no order), which retention keeps whatever their day."""
    return [select(model.trace_id).where(model.trace_id.is_not(None))
            for model in (Order, Trade, TradePlan, TradePlanVersion)]


def kept_whatever_the_day() -> ColumnElement[bool]:
    """The traces retention keeps (a row at least) on a thinned day: those that caused
    something, and those that cost something (their cost is the day's)."""
    return or_(_COSTED, *(LLMTrace.id.in_(ids) for ids in caused()))


def _unneeded_traces(sessions: Select) -> Select:
    """The traces of ``sessions`` that caused nothing and whose decisions are scored (before
    their run's tip, ``db.decision_scores``): a later one is still read to score it."""
    of_trace = aliased(Session)
    scored = exists().where(of_trace.id == LLMTrace.session_id,
                            DecisionScoreTip.kind == of_trace.kind,
                            DecisionScoreTip.run_name == of_trace.run_name,
                            LLMTrace.created_at < DecisionScoreTip.through)
    return select(LLMTrace.id).where(LLMTrace.session_id.in_(sessions), scored,
                                     *(LLMTrace.id.not_in(ids) for ids in caused()))


# what a costed trace keeps no more: its prompt and answers (the blobs they name go)
_CONTENT = (LLMTrace.prompt_hash, LLMTrace.system_hash, LLMTrace.response_hash,
            LLMTrace.answers, LLMTrace.tool_calls, LLMTrace.raw_response)


def _dropped_traces(traces: Select) -> Select:
    return traces.where(or_(LLMTrace.cost.is_(None), ~_COSTED))


def _stripped_traces(traces: Select) -> Select:
    """The costed ones of ``traces`` that still hold a prompt or an answer."""
    return traces.where(_COSTED, or_(*(column.is_not(None) for column in _CONTENT)))


def _unneeded_ticks(sessions: Select) -> Select:
    live = select(Session.id).where(Session.id.in_(sessions), Session.kind != "replay")
    last = (select(func.max(MarketData.id)).where(MarketData.session_id.in_(live))
            .group_by(MarketData.session_id, MarketData.symbol))
    return select(MarketData.id).where(
        and_(MarketData.session_id.in_(live), MarketData.id.not_in(last)))


def _count(db: OrmSession, ids: Select) -> int:
    return int(db.scalar(select(func.count()).select_from(ids.subquery())) or 0)


def prune(db: OrmSession, before: date, *, dry_run: bool = False) -> Pruned:
    """Thin what is dated before ``before`` (committed unless ``dry_run``); what it removes,
    or would."""
    sessions = _old_sessions(before)
    traces, ticks = _unneeded_traces(sessions), _unneeded_ticks(sessions)
    dropped, stripped = _dropped_traces(traces), _stripped_traces(traces)
    counted = _count(db, sessions)
    if dry_run:
        return Pruned(counted, _count(db, dropped) + _count(db, stripped), _count(db, ticks), 0)
    # an IN over a derived list: SQLite and PostgreSQL both delete from the selected ids
    gone_traces = _deleted(db, update(_TRACES).where(_TRACES.c.id.in_(stripped)).values(
        {column.key: null() for column in _CONTENT} | {"prompt": ""}))
    gone_traces += _deleted(db, delete(_TRACES).where(_TRACES.c.id.in_(dropped)))
    gone_ticks = _deleted(db, delete(_TICKS).where(_TICKS.c.id.in_(ticks)))
    gone_blobs = _drop_unnamed_blobs(db)
    db.commit()
    return Pruned(counted, gone_traces, gone_ticks, gone_blobs)


def _deleted(db: OrmSession, statement: Delete | Update) -> int:
    # Session.execute is typed as returning a Result, but a Core delete's is a CursorResult.
    return cast(CursorResult[Any], db.execute(statement)).rowcount


def _drop_unnamed_blobs(db: OrmSession) -> int:
    """Delete the prompts and answers no trace names any more, holding off the traces being
    written (``lock_blobs``) from before the names are read until the prune commits."""
    lock_blobs(db, alone=True)
    named = named_hashes(db)
    unnamed = [key for key in db.scalars(select(TraceBlob.hash)) if key not in named]
    for start in range(0, len(unnamed), BLOB_BATCH):
        db.execute(delete(_BLOBS).where(_BLOBS.c.hash.in_(unnamed[start:start + BLOB_BATCH])))
    return len(unnamed)


def named_hashes(db: OrmSession) -> set[str]:
    """Every blob key a trace names (answers name theirs inside their JSON, so the names are
    gathered here)."""
    named: set[str] = set()
    for prompt, system, response, answers in db.execute(
            select(LLMTrace.prompt_hash, LLMTrace.system_hash, LLMTrace.response_hash,
                   LLMTrace.answers)
            .where(or_(LLMTrace.prompt_hash.is_not(None), LLMTrace.system_hash.is_not(None),
                       LLMTrace.response_hash.is_not(None), LLMTrace.answers.is_not(None)))):
        named.update(key for key in (prompt, system, response) if key)
        named.update(a["response_hash"] for a in answers or []
                     if isinstance(a, dict) and isinstance(a.get("response_hash"), str))
    return named
