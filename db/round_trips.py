"""A run's round trips (``bot.model.round_trips``) read from its fills, orders and plans.

Grouping starts at the run's first fill whatever the span asked for: a trip's state depends
on every fill before it. The span then picks the trips that closed in it, and those still
open that opened before its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.round_trips import RoundTrip, TripFill, group_round_trips, stop_was_trailed
from db.models import LLMTrace, Order, Session, Trade, TradePlan

# The columns of ``round_trip_frame``, in the order the console and the report show them.
TRIP_COLUMNS = ["symbol", "direction", "opened_at", "closed_at", "duration_minutes", "size",
                "avg_entry", "avg_exit", "gross_pnl", "fees", "net_pnl", "return_pct",
                "exit_reason", "engine", "open_trace_id", "close_trace_id", "fills"]


def trip_fills(db: OrmSession, session_ids: Sequence[int],
               which: ColumnElement[bool] | None = None) -> list[TripFill]:
    """Every fill of these sessions (those of them ``which`` picks), day by day and in
    booking order within a day, with its order's purpose, its plan's trail and its
    decision's engine.

    Day by day, as a rollup folds them (``db.performance_rollups``): a fill the sync sees
    late is booked into the session of its day, after fills of the days since (its id is
    newer), and it happened before them."""
    rows = db.execute(
        select(Trade.id, Trade.symbol, Trade.action, Trade.quantity, Trade.price, Trade.fee,
               Trade.timestamp, Order.purpose, Trade.reason, Trade.trace_id, LLMTrace.engine,
               TradePlan.side, TradePlan.entry_price, TradePlan.stop_price,
               TradePlan.trail_armed)
        .outerjoin(Order, Order.client_order_id == Trade.client_order_id)
        .outerjoin(TradePlan, TradePlan.id == Trade.plan_id)
        .outerjoin(LLMTrace, LLMTrace.id == Trade.trace_id)
        .join(Session, Session.id == Trade.session_id)
        .where(Trade.session_id.in_(session_ids), *(() if which is None else (which,)))
        .order_by(Session.date, Session.id, Trade.id)
    ).all()
    return [
        TripFill(id=r.id, symbol=r.symbol, side=r.action, quantity=r.quantity, price=r.price,
                 fee=r.fee, timestamp=r.timestamp, purpose=r.purpose, reason=r.reason,
                 trace_id=r.trace_id, engine=r.engine,
                 trailed=r.side is not None and stop_was_trailed(
                     r.side, r.entry_price, r.stop_price, bool(r.trail_armed)))
        for r in rows
    ]


def round_trips(db: OrmSession, session_ids: Sequence[int], start: datetime | None = None,
                end: datetime | None = None) -> list[RoundTrip]:
    """The round trips of a run (its sessions) in [start, end): closed in it, or still open
    and opened before its end."""
    trips = group_round_trips(trip_fills(db, session_ids))
    return [t for t in trips if in_span(t, start, end)]


def in_span(trip: RoundTrip, start: datetime | None, end: datetime | None) -> bool:
    if trip.closed_at is None:
        return end is None or trip.opened_at < end
    return (start is None or trip.closed_at >= start) and (end is None or trip.closed_at < end)


def round_trip_rows(trips: Sequence[RoundTrip]) -> list[dict]:
    """Each trip as a plain record (times in ISO, durations in minutes): the report's JSON
    and the console's table."""
    return [{
        "symbol": t.symbol, "direction": t.direction,
        "opened_at": t.opened_at.isoformat(),
        "closed_at": t.closed_at.isoformat() if t.closed_at else None,
        "duration_minutes": t.duration.total_seconds() / 60 if t.duration else None,
        "size": t.size, "avg_entry": t.avg_entry, "avg_exit": t.avg_exit,
        "gross_pnl": t.gross_pnl, "fees": t.fees, "net_pnl": t.net_pnl,
        "return_pct": t.return_pct,
        "exit_reason": str(t.exit_reason) if t.exit_reason else None, "engine": t.engine,
        "open_trace_id": t.open_trace_id, "close_trace_id": t.close_trace_id,
        "fills": len(t.fill_ids),
    } for t in trips]


def round_trip_frame(trips: Sequence[RoundTrip]) -> pd.DataFrame:
    return pd.DataFrame(round_trip_rows(trips), columns=TRIP_COLUMNS)


def filtered_trips(trips: Sequence[RoundTrip], symbols: Sequence[str] = (),
                   reasons: Sequence[str] = (), outcome: str | None = None) -> list[RoundTrip]:
    """The trips of some symbols and exit reasons (empty: all), only wins or only losses
    (``outcome`` "win" | "loss": closed trips by net PnL, as ``trip_figures`` counts them;
    None: every trip, open ones too)."""
    return [t for t in trips
            if (not symbols or t.symbol in symbols)
            and (not reasons or (t.exit_reason is not None and t.exit_reason in reasons))
            and (outcome is None or (t.closed_at is not None and t.net_pnl != 0
                                     and (t.net_pnl > 0) == (outcome == "win")))]
