"""What the performance figures need of a span's equity steps, computed by the database.

A year of 5-minute steps is 105k rows; the figures need each day's closing equity, the
deepest fall from a running peak and the longest time below one, the share of steps with
exposure, the first and last prices and a curve of about ``MAX_CURVE_POINTS`` steps. Window
functions give each of them without sending the steps to Python. Steps are taken in time
order, ties by id, as they were recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Select, case, extract, func, or_, select, type_coerce
from sqlalchemy.orm import Session as OrmSession

from bot.model.performance import EquityFigures
from db.models import EquityStep, UtcDateTime
from db.queries_replays import MAX_CURVE_POINTS, _prices

IN_ORDER = (EquityStep.created_at, EquityStep.id)


def _span(query: Select, ids: Sequence[int], start: datetime | None,
          end: datetime | None) -> Select:
    query = query.where(EquityStep.session_id.in_(ids))
    if start is not None:
        query = query.where(EquityStep.created_at >= start)
    if end is not None:
        query = query.where(EquityStep.created_at < end)
    return query


def equity_figures(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                   end: datetime | None = None) -> EquityFigures | None:
    """The span's equity figures; None when it recorded no step."""
    rows = _kept_steps(db, ids, start, end)
    if not rows:
        return None
    totals = rows[0]
    return EquityFigures(
        closes=_daily_closes(rows), opening=float(totals.opening), final=float(totals.final),
        max_drawdown_pct=abs(float(totals.deepest or 0.0)) * 100,
        max_drawdown_hours=_longest_drawdown(db, ids, start, end, totals.last,
                                             totals.final < totals.top)
        .total_seconds() / 3600,
        exposure_time_pct=float(totals.exposed / totals.n * 100), first=totals.first,
        last=totals.last, first_prices=_edge_prices(db, ids, start, end, newest=False),
        last_prices=_edge_prices(db, ids, start, end, newest=True), curve=_curve(rows))


def _kept_steps(db: OrmSession, ids: Sequence[int], start: datetime | None,
                end: datetime | None) -> list:
    """In one pass over the span's steps, in order: each day's last, about
    ``MAX_CURVE_POINTS`` evenly spaced ones, the last and those at the deepest drawdown,
    each carrying the span's totals."""
    steps = _span(select(
        EquityStep.created_at, EquityStep.equity, EquityStep.exposure,
        _day(db).label("day"),
        func.row_number().over(partition_by=_day(db), order_by=(
            EquityStep.created_at.desc(), EquityStep.id.desc())).label("latest"),
        func.max(EquityStep.equity).over(order_by=IN_ORDER).label("peak"),
        func.row_number().over(order_by=IN_ORDER).label("rn"),
        func.count().over().label("n")), ids, start, end).subquery()
    fall = case((steps.c.peak > 0, 1 - steps.c.equity / steps.c.peak))
    everything = {"partition_by": None}
    figures = select(
        steps, fall.label("fall"), func.max(fall).over(**everything).label("deepest"),
        func.sum(case((steps.c.exposure > 0, 1), else_=0)).over(**everything).label("exposed"),
        func.max(case((steps.c.rn == 1, steps.c.equity))).over(**everything).label("opening"),
        func.max(case((steps.c.rn == steps.c.n, steps.c.equity))).over(**everything)
        .label("final"),
        func.max(steps.c.peak).over(**everything).label("top"),
        func.min(steps.c.created_at).over(**everything).label("first"),
        func.max(steps.c.created_at).over(**everything).label("last")).subquery()
    stride = case((figures.c.n >= MAX_CURVE_POINTS, figures.c.n / MAX_CURVE_POINTS), else_=1)
    return list(db.execute(select(figures).where(or_(
        figures.c.latest == 1, (figures.c.rn - 1) % stride == 0, figures.c.rn == figures.c.n,
        figures.c.fall == figures.c.deepest)).order_by(figures.c.rn)))


def _day(db: OrmSession):
    """A step's UTC day: SQLite holds UTC text, PostgreSQL an aware timestamp."""
    if db.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", EquityStep.created_at))
    return func.date(EquityStep.created_at)


def _daily_closes(rows: list) -> pd.Series:
    """Each UTC day's last equity, indexed by the day (midnight UTC)."""
    closes = [row for row in rows if row.latest == 1]
    return pd.Series([float(row.equity) for row in closes], dtype=float, index=pd.DatetimeIndex(
        [pd.Timestamp(str(row.day), tz="UTC") for row in closes]))


def _longest_drawdown(db: OrmSession, ids: Sequence[int], start: datetime | None,
                      end: datetime | None, last: datetime, below_at_end: bool) -> timedelta:
    """The longest time from a peak (a step at or above every step before it) to the next
    peak, or to the last step when the span ends below its peak."""
    prior = func.max(EquityStep.equity).over(order_by=IN_ORDER, rows=(None, -1))
    steps = _span(select(EquityStep.created_at, EquityStep.id, EquityStep.equity,
                         prior.label("prior")), ids, start, end).subquery()
    peaks = select(steps.c.created_at, type_coerce(
        func.lag(steps.c.created_at).over(order_by=(steps.c.created_at, steps.c.id)),
        UtcDateTime()).label("previous"), func.max(steps.c.created_at).over().label("last_peak")
    ).where(or_(steps.c.prior.is_(None), steps.c.equity >= steps.c.prior)).subquery()
    if db.get_bind().dialect.name == "postgresql":
        gap = extract("epoch", peaks.c.created_at - peaks.c.previous)
    else:
        gap = func.julianday(peaks.c.created_at) - func.julianday(peaks.c.previous)
    # the database ranks the gaps, Python measures the few longest exactly; the first peak
    # (no gap) comes last, so there is always a row to carry the last peak's time
    widest = db.execute(select(peaks.c.previous, peaks.c.created_at, peaks.c.last_peak)
                        .order_by(gap.desc().nulls_last()).limit(4)).all()
    longest = max((later - earlier for earlier, later, _ in widest if earlier is not None),
                  default=timedelta(0))
    if below_at_end and widest:
        longest = max(longest, last - widest[0].last_peak)
    return longest


def _edge_prices(db: OrmSession, ids: Sequence[int], start: datetime | None,
                 end: datetime | None, *, newest: bool) -> dict[str, float]:
    """The first (or last) step's prices in the span that name any; {} if none does."""
    order = (EquityStep.created_at.desc(), EquityStep.id.desc()) if newest else IN_ORDER
    query = _span(select(EquityStep.prices).where(EquityStep.prices != "{}"), ids, start,
                  end).order_by(*order)
    batch, offset = 8, 0
    while True:
        found = list(db.scalars(query.offset(offset).limit(batch)))
        for prices in found:
            if parsed := _prices(prices):
                return parsed
        if len(found) < batch:
            return {}
        offset += batch


def _curve(rows: list) -> pd.DataFrame:
    """Time, equity and drawdown (%, ≤ 0) of the evenly spaced steps, the last and the first
    at the deepest drawdown, for a chart."""
    count = rows[0].n
    stride = max(1, count // MAX_CURVE_POINTS)
    deepest_seen = False
    points = []
    for row in rows:
        at_deepest = row.deepest is not None and row.fall == row.deepest
        if not ((row.rn - 1) % stride == 0 or row.rn == count
                or (at_deepest and not deepest_seen)):
            continue
        deepest_seen = deepest_seen or at_deepest
        points.append({"time": row.created_at, "equity": float(row.equity),
                       "drawdown_pct": (row.equity / row.peak - 1) * 100 if row.peak > 0
                       else math.nan})
    return pd.DataFrame(points, columns=["time", "equity", "drawdown_pct"])
