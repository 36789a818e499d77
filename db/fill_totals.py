"""Closed sessions' fill totals, kept on their performance rollups: the Trades page over a
whole run sums them with the rows of the sessions that have none (the open one), so it
costs a day's fills and one small row per closed session however long the run.

Written with the rollup as a session closes (``db.performance_rollups.roll_up_closed``):
a fill booked into a closed session later deletes its rollup
(``db.performance_rollups.void_from``), to be written again. They stand only for a
session's every fill: a filter on symbol, side, time or reason reads the rows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session as OrmSession

from db.models import PerformanceRollup, Trade

SPAN_CHUNK = 16  # sessions read at a time, newest first, to find the newest page's

# What the Trades page sums over fills: count, notional, fees, realized PnL, wins, losses.
FILL_SUMS = (
    func.count(Trade.id),
    func.coalesce(func.sum(Trade.quantity * Trade.price), 0.0),
    func.coalesce(func.sum(Trade.fee), 0.0),
    func.coalesce(func.sum(Trade.realized_pnl), 0.0),
    func.coalesce(func.sum(case((Trade.realized_pnl > 0, 1), else_=0)), 0),
    func.coalesce(func.sum(case((Trade.realized_pnl < 0, 1), else_=0)), 0),
)


def fill_in(db: OrmSession, rollup: PerformanceRollup) -> None:
    """Set the rollup's fill totals from its session's fills."""
    held = Trade.session_id == rollup.session_id
    count, notional, fees, realized, wins, losses, first, last = db.execute(
        select(*FILL_SUMS, func.min(Trade.timestamp), func.max(Trade.timestamp))
        .where(held)).one()
    rollup.fill_count, rollup.fill_wins, rollup.fill_losses = int(count), int(wins), int(losses)
    rollup.fill_notional, rollup.fill_fees = float(notional), float(fees)
    rollup.fill_realized, rollup.fill_first, rollup.fill_last = float(realized), first, last
    rollup.fill_symbols = json.dumps(sorted(db.scalars(
        select(Trade.symbol).where(held).distinct())))


def fill_in_missing(db: OrmSession) -> int:
    """Set the fill totals of every rollup written without them (before they were kept)."""
    missing = list(db.scalars(select(PerformanceRollup)
                              .where(PerformanceRollup.fill_count.is_(None))))
    for rollup in missing:
        fill_in(db, rollup)
    db.commit()
    return len(missing)


def rolled_ids(db: OrmSession, session_ids: Sequence[int]) -> tuple[int, ...]:
    """Those of these sessions whose fill totals are written."""
    return tuple(db.scalars(select(PerformanceRollup.session_id).where(
        PerformanceRollup.session_id.in_(session_ids),
        PerformanceRollup.fill_count.is_not(None))))


def rolled_sums(db: OrmSession, rolled: Sequence[int]) -> tuple[int, float, float, float,
                                                                   int, int]:
    """The fill totals of these sessions summed: count, notional, fees, realized PnL, wins
    and losses."""
    r = PerformanceRollup
    sums: tuple[Any, ...] = tuple(db.execute(select(
        *(func.coalesce(func.sum(column), 0) for column in (
            r.fill_count, r.fill_notional, r.fill_fees, r.fill_realized, r.fill_wins,
            r.fill_losses))).where(r.session_id.in_(rolled))).one())
    count, notional, fees, realized, wins, losses = sums
    return (int(count), float(notional), float(fees), float(realized), int(wins),
            int(losses))


def rolled_symbols(db: OrmSession, rolled: Sequence[int]) -> set[str]:
    """The symbols these sessions filled (most days' lists are alike: each is parsed once)."""
    return {symbol for text in db.scalars(
        select(PerformanceRollup.fill_symbols).where(
            PerformanceRollup.session_id.in_(rolled)).distinct())
            for symbol in json.loads(text or "[]")}


def rolled_spans(db: OrmSession, rolled: Sequence[int]
                 ) -> Iterator[tuple[int, int, datetime, datetime]]:
    """These sessions' fill count, oldest and newest fill, newest first, read a few at a
    time: the newest page of a run needs the newest few sessions of it."""
    r = PerformanceRollup
    query = select(r.session_id, r.fill_count, r.fill_first, r.fill_last).where(
        r.session_id.in_(rolled), r.fill_count > 0).order_by(r.fill_last.desc(),
                                                             r.session_id.desc())
    for offset in itertools.count(0, SPAN_CHUNK):
        rows: list[Any] = list(db.execute(query.offset(offset).limit(SPAN_CHUNK)))
        yield from ((row[0], row[1], row[2], row[3]) for row in rows)
        if len(rows) < SPAN_CHUNK:
            return
