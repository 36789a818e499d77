"""Closed sessions' fill totals, kept on their performance rollups: the Trades page over a
whole run sums them with the rows of the sessions that have none (the open one), so it
costs a day's fills and one small row per closed session however long the run.

Written with the rollup as a session closes (``db.performance_rollups.roll_up_closed``):
a closed session's fills no longer change (a late fill is booked in the open session).
They stand only for a session's every fill: a filter on symbol, side, time or reason reads
the rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session as OrmSession

from db.models import PerformanceRollup, Trade

# What the Trades page sums over fills: count, notional, fees, realized PnL, wins, losses.
FILL_SUMS = (
    func.count(Trade.id),
    func.coalesce(func.sum(Trade.quantity * Trade.price), 0.0),
    func.coalesce(func.sum(Trade.fee), 0.0),
    func.coalesce(func.sum(Trade.realized_pnl), 0.0),
    func.coalesce(func.sum(case((Trade.realized_pnl > 0, 1), else_=0)), 0),
    func.coalesce(func.sum(case((Trade.realized_pnl < 0, 1), else_=0)), 0),
)


@dataclass(frozen=True)
class FillTotals:
    session_id: int
    count: int
    notional: float
    fees: float
    realized: float
    wins: int
    losses: int
    first: datetime | None  # its oldest and newest fill; None: no fill
    last: datetime | None
    symbols: tuple[str, ...]


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


def rolled_fills(db: OrmSession, session_ids: Sequence[int]) -> list[FillTotals]:
    """The fill totals of those of these sessions that have them."""
    r = PerformanceRollup
    rows = db.execute(select(
        r.session_id, r.fill_count, r.fill_notional, r.fill_fees, r.fill_realized,
        r.fill_wins, r.fill_losses, r.fill_first, r.fill_last, r.fill_symbols)
        .where(r.session_id.in_(session_ids), r.fill_count.is_not(None))).all()
    return [FillTotals(row.session_id, int(row.fill_count), float(row.fill_notional or 0.0),
                       float(row.fill_fees or 0.0), float(row.fill_realized or 0.0),
                       int(row.fill_wins or 0), int(row.fill_losses or 0), row.fill_first,
                       row.fill_last, tuple(json.loads(row.fill_symbols or "[]")))
            for row in rows]
