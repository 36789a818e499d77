"""Per-session rollups of the performance figures: written as a session closes, composed
with the open day's rows when a span is read, so the Performance page costs a day's rows
and one small row per closed day however long the run.

A rollup holds the session's steps digested (``bot.model.step_digest``) and the round
trips its fills closed, tallied per symbol, with the trips left open and their holdings,
which the next day's fills fold on from (``bot.model.trip_tally``). A run's rollups are
a prefix of its sessions (oldest first): the trips of a day need the open trips of the day
before. Sessions past the prefix (the open one, or all of a run no rollup was written for)
are read from their rows, as is a rolled-up session the span cuts through. The trips a
session closed are also kept per opening decision, for the scorecard (``db.trip_results``),
and a fill booked into a rolled-up session voids the run's rollups from its day on
(``void_from``), to be written again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from itertools import groupby

from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import aliased

from bot.model.performance import EquityFigures
from bot.model.round_trips import RoundTrip, group_round_trips
from bot.model.step_digest import Step, StepDigest, compose, digest
from bot.model.trip_tally import TripTally, merged, tally, tally_from_json, tally_json
from db.fill_totals import fill_in, fill_in_missing
from db.models import EquityStep, LLMTrace, PerformanceRollup, Session, Trade, TripResult
from db.queries_replays import MAX_CURVE_POINTS, step_prices
from db.replay_runs import run_finished_at
from db.round_trips import in_span, round_trips, trip_fills
from db.sessions import in_order, run_session_ids, runs
from db.trip_results import add_results


@dataclass(frozen=True)
class Rollup:
    session_id: int
    steps: StepDigest | None
    trips: dict[str, TripTally]
    still_open: list[RoundTrip]
    llm_cost: float
    llm_first: datetime | None
    llm_last: datetime | None


def rolled_prefix(db: OrmSession, ordered: Sequence[int]) -> list[Rollup]:
    """The rollups of the longest run of these sessions (oldest first) that has them."""
    rows = {row.session_id: row for row in db.scalars(
        select(PerformanceRollup).where(PerformanceRollup.session_id.in_(ordered)))}
    out = []
    for session_id in ordered:
        row = rows.get(session_id)
        if row is None:
            break
        steps, tallies, still_open = _parsed(row.steps, row.trips)
        out.append(Rollup(session_id, steps, tallies, still_open, row.llm_cost, row.llm_first,
                          row.llm_last))
    return out


@lru_cache(maxsize=8192)
def _parsed(steps: str | None, trips: str
            ) -> tuple[StepDigest | None, dict[str, TripTally], list[RoundTrip]]:
    """A rollup read from its row, kept by its text: a closed day's rollup does not change,
    and parsing a year of them is most of what the page costs (its open trips are copied
    before folding goes on from them: ``_fresh``)."""
    tallies, still_open = tally_from_json(trips)
    return StepDigest.from_json(steps) if steps else None, tallies, still_open


def _fresh(trip: RoundTrip) -> RoundTrip:
    """A copy of an open trip that folding can go on in."""
    return replace(trip, fill_ids=list(trip.fill_ids), holding=replace(trip.holding))


def _with_rollup(db: OrmSession, ordered: Sequence[int]) -> set[int]:
    return set(db.scalars(select(PerformanceRollup.session_id)
                          .where(PerformanceRollup.session_id.in_(ordered))))


def _leading(ordered: Sequence[int], have: set[int]) -> int:
    """How many of ``ordered`` come before the first not in ``have``."""
    return next((k for k, session_id in enumerate(ordered) if session_id not in have),
                len(ordered))


def _left_open(db: OrmSession, session_id: int) -> list[RoundTrip]:
    """The trips a rolled-up session left open, with their holdings, freshly parsed: folding
    goes on in them."""
    return tally_from_json(db.get_one(PerformanceRollup, session_id).trips)[1]


def rolled_open(db: OrmSession, ordered: Sequence[int]) -> tuple[int, list[RoundTrip]]:
    """How many of these sessions (oldest first) lead with a rollup, and the trips the last
    of them left open: what the fills of the sessions after fold on from."""
    done = _leading(ordered, _with_rollup(db, ordered))
    return done, _left_open(db, ordered[done - 1]) if done else []


def roll_up_closed(db: OrmSession, ids: Sequence[int], open_id: int | None = None) -> int:
    """Write the missing rollups of a run's sessions up to (not including) ``open_id``
    (None: all of them, a finished run), oldest first, with the results of the trips each
    closed per opening decision (``db.trip_results``); returns how many were written."""
    ordered = in_order(db, ids)
    if open_id in ordered:
        ordered = ordered[:ordered.index(open_id)]
    have = _with_rollup(db, ordered)
    done = _leading(ordered, have)
    carried = _left_open(db, ordered[done - 1]) if done else []
    written = 0
    for k in range(done, len(ordered)):
        session_id = ordered[k]
        if session_id in have:
            carried = _left_open(db, session_id)
            continue
        trips = group_round_trips(trip_fills(db, [session_id]), carried)
        carried = [t for t in trips if t.closed_at is None]
        add_results(db, session_id, trips)
        steps = _steps(db, [session_id], None, None).get(session_id)
        cost, first, last = db.execute(
            select(func.coalesce(func.sum(LLMTrace.cost), 0.0), func.min(LLMTrace.created_at),
                   func.max(LLMTrace.created_at)).where(LLMTrace.session_id == session_id)).one()
        rollup = PerformanceRollup(
            session_id=session_id,
            steps=digest(steps, step_prices).to_json() if steps else None,
            trips=tally_json(tally(trips), carried), llm_cost=float(cost), llm_first=first,
            llm_last=last)
        fill_in(db, rollup)
        db.add(rollup)
        written += 1
    db.commit()
    return written


_HAS_ROLLUP = select(PerformanceRollup.session_id).where(
    PerformanceRollup.session_id == bindparam("session_id"))


def void_from(db: OrmSession, session_id: int) -> None:
    """Delete the run's rollups and trip results from ``session_id``'s on, if it has a
    rollup (uncommitted).

    A fill booked into a closed session (the sync sees a fill of the day's last step after
    the rollover, or a restarted bot the fills of the days it was down) changes that day's
    figures and the open trips each later day's go on from. The run's figures are read from
    the rows of the sessions without a rollup, and the next rollup writes them again.
    """
    if db.execute(_HAS_ROLLUP, {"session_id": session_id}).first() is None:
        return
    this = aliased(Session)
    later = (select(Session.id)
             .join(this, and_(this.id == session_id, Session.kind == this.kind,
                              Session.run_name == this.run_name))
             .where(or_(Session.date > this.date,
                        and_(Session.date == this.date, Session.id >= this.id))))
    for rolled in (PerformanceRollup, TripResult):
        db.execute(delete(rolled).where(rolled.session_id.in_(later)),
                   execution_options={"synchronize_session": False})


def add_rolled_llm_cost(conn: Connection, session_id: int, cost: float) -> None:
    """Add an LLM call's cost booked late into ``session_id`` to its rollup, if it has one
    (uncommitted): a call abandoned for a close-all or stop answers when it answers, maybe
    after its day was rolled up. Its trace's time is the day's, so only the sum changes."""
    conn.execute(update(PerformanceRollup).where(PerformanceRollup.session_id == session_id)
                 .values(llm_cost=PerformanceRollup.llm_cost + cost))


def _steps(db: OrmSession, ids: Sequence[int], start: datetime | None,
           end: datetime | None) -> dict[int, list[Step]]:
    """The steps of these sessions in [start, end), in order, per session."""
    query = select(EquityStep.session_id, EquityStep.created_at, EquityStep.equity,
                   EquityStep.exposure, EquityStep.prices).where(EquityStep.session_id.in_(ids))
    if start is not None:
        query = query.where(EquityStep.created_at >= start)
    if end is not None:
        query = query.where(EquityStep.created_at < end)
    rows = db.execute(query.order_by(EquityStep.session_id, EquityStep.created_at,
                                     EquityStep.id)).all()
    return {session_id: [Step(r.created_at, r.equity, r.exposure, r.prices) for r in group]
            for session_id, group in groupby(rows, key=lambda r: r.session_id)}


def _within(first: datetime | None, last: datetime | None, start: datetime | None,
            end: datetime | None) -> bool | None:
    """Whether [first, last] lies in [start, end): True, False (wholly outside) or None
    (the span cuts it)."""
    if first is None or last is None:
        return False
    if (start is None or first >= start) and (end is None or last < end):
        return True
    if (start is not None and last < start) or (end is not None and first >= end):
        return False
    return None


def span_equity(db: OrmSession, ordered: Sequence[int], rolled: Sequence[Rollup],
                start: datetime | None, end: datetime | None) -> EquityFigures | None:
    """The span's step figures: closed days' digests where the span holds the whole day,
    the rows of the rest."""
    digests: list[StepDigest] = []
    from_rows = list(ordered[len(rolled):])
    for rollup in rolled:
        if rollup.steps is None:
            continue
        inside = _within(rollup.steps.first, rollup.steps.last, start, end)
        if inside:
            digests.append(rollup.steps)
        elif inside is None:
            from_rows.append(rollup.session_id)
    if from_rows:
        digests += [digest(steps, step_prices, thin=False)
                    for steps in _steps(db, from_rows, start, end).values()]
    digests.sort(key=lambda d: d.first)
    return compose(digests, MAX_CURVE_POINTS)


def span_trips(db: OrmSession, ordered: Sequence[int], rolled: Sequence[Rollup],
               start: datetime | None, end: datetime | None
               ) -> tuple[dict[str, TripTally], list[RoundTrip]]:
    """The tallies of the trips closed in the span, and the trips still open at its end
    that opened before it ends. Closed days' tallies stand for their trips where the span
    holds all of a day's closes or none; when it cuts one, the run's fills are regrouped."""
    tallies = []
    for rollup in rolled:
        for symbol, one in rollup.trips.items():
            inside = _within(one.first_close, one.last_close, start, end)
            if inside is None:
                trips = round_trips(db, ordered, start, end)
                return tally(trips), [t for t in trips if t.closed_at is None]
            if inside:
                tallies.append({symbol: one})
    carried = [_fresh(t) for t in rolled[-1].still_open] if rolled else []
    live = [t for t in group_round_trips(trip_fills(db, ordered[len(rolled):]), carried)
            if in_span(t, start, end)]
    return merged([*tallies, tally(live)]), [t for t in live if t.closed_at is None]



def session_trips(db: OrmSession, ids: Sequence[int], session_id: int) -> TripTally:
    """The round trips one session of the run ``ids`` closed (their last fill booked in it),
    summed over its symbols: a rolled-up session's from its rollup, another's folded from
    the fills after the last rollup, on from the trips it left open."""
    ordered = in_order(db, ids)
    rolled = rolled_prefix(db, ordered)
    mine = next((rollup.trips for rollup in rolled if rollup.session_id == session_id), None)
    if mine is None:
        carried = [_fresh(t) for t in rolled[-1].still_open] if rolled else []
        booked = set(db.scalars(select(Trade.id).where(Trade.session_id == session_id)))
        trips = group_round_trips(trip_fills(db, ordered[len(rolled):]), carried)
        mine = tally(t for t in trips if t.fill_ids and t.fill_ids[-1] in booked)
    total = TripTally()
    for one in mine.values():
        total.add(one)
    return total


def span_llm_cost(db: OrmSession, ordered: Sequence[int], rolled: Sequence[Rollup],
                  start: datetime | None, end: datetime | None) -> float:
    """The LLM cost of the span's traces: closed days' sums where the span holds all of a
    day's traces, the rows of the rest."""
    total, from_rows = 0.0, list(ordered[len(rolled):])
    for rollup in rolled:
        inside = _within(rollup.llm_first, rollup.llm_last, start, end)
        if inside:
            total += rollup.llm_cost
        elif inside is None:
            from_rows.append(rollup.session_id)
    if not from_rows:
        return total
    query = select(func.coalesce(func.sum(LLMTrace.cost), 0.0)).where(
        LLMTrace.session_id.in_(from_rows))
    if start is not None:
        query = query.where(LLMTrace.created_at >= start)
    if end is not None:
        query = query.where(LLMTrace.created_at < end)
    return total + float(db.scalar(query) or 0.0)


def equity_figures(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                   end: datetime | None = None) -> EquityFigures | None:
    """The span's step figures (``span_equity``); None when it recorded no step."""
    ordered = in_order(db, ids)
    return span_equity(db, ordered, rolled_prefix(db, ordered), start, end)


def add_every_result(db: OrmSession) -> int:
    """Write the trip results of rollups that have none (a database whose rollups predate
    ``trip_results``): a run with rollups and no result is folded in order, each rolled
    session's results added; a run with results has them written with its rollups. Flushed,
    uncommitted; returns the sessions written for."""
    written = 0
    resulted = set(db.scalars(select(TripResult.session_id).distinct()))
    for kind, run_name in runs(db):
        ordered = in_order(db, run_session_ids(db, kind, run_name))
        have = _with_rollup(db, ordered)
        if not have or have & resulted:
            continue
        carried: list[RoundTrip] = []
        for session_id in ordered[:max(k + 1 for k, s in enumerate(ordered) if s in have)]:
            trips = group_round_trips(trip_fills(db, [session_id]), carried)
            carried = [t for t in trips if t.closed_at is None]
            if session_id in have:
                add_results(db, session_id, trips)
                written += 1
    db.flush()
    return written


def roll_up_every_run(db: OrmSession) -> int:
    """Write the missing rollups of every run's closed sessions: all but its newest, or all
    of a finished replay, and the fill totals of rollups written without them (the
    upgrade's backfill, and the bench's after its bulk rows)."""
    written = 0
    for kind, run_name in runs(db):
        ids = run_session_ids(db, kind, run_name)
        finished = kind == "replay" and run_finished_at(db, run_name) is not None
        written += roll_up_closed(db, ids, None if finished else in_order(db, ids)[-1])
    fill_in_missing(db)
    return written
