"""Read-only queries behind the Chart page: a window of candles, plan levels and fills.

Months of 1m candles would freeze a browser, so candles are windowed on the server: either
the latest N or a date range, always capped. Candles, plans and fills are read across all
sessions of the run because a plan opened yesterday is still live today and a day's session
stores only the candles newer than the run's (a run's older databases hold overlapping ones:
duplicates are dropped, the newest session wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Row, ScalarSelect, Subquery, func, or_, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.candles import CANDLE_COLUMNS
from db.models import OHLCV, Session, Trade, TradePlan, TradePlanVersion

MAX_CANDLES = 5000
RECENT_SESSIONS = 8


def chart_choices(db: OrmSession, run_ids: Sequence[int]) -> dict[str, list[str]]:
    """Symbol → timeframes that have candles (a scan of the candles' key, which leads with the session).

    The run's newest RECENT_SESSIONS sessions answer first: a day's session stores the
    candles of every timeframe that closed during it (a week's, for ``1w``), and scanning a
    year of a run's keys cost 50 ms on every chart rerun. The whole run is only scanned
    when those have no candle yet.
    """
    rows: Sequence[Row[str, str]] = []
    for ids in (sorted(run_ids)[-RECENT_SESSIONS:], run_ids):
        rows = db.execute(
            select(OHLCV.symbol, OHLCV.timeframe).where(OHLCV.session_id.in_(ids)).distinct()
        ).all()
        if rows:
            break
    choices: dict[str, list[str]] = {}
    for symbol, timeframe in rows:
        choices.setdefault(symbol, []).append(timeframe)
    for timeframes in choices.values():
        timeframes.sort(key=_timeframe_seconds)
    return dict(sorted(choices.items()))


def _timeframe_seconds(timeframe: str) -> int:
    unit = {"m": 60, "h": 3600, "d": 86400}.get(timeframe[-1:], 1)
    try:
        return int(timeframe[:-1]) * unit
    except ValueError:
        return 0


def _session_edges(run_ids: Sequence[int], symbol: str, timeframe: str) -> Subquery:
    """Each session's first and last candle of ``timeframe`` (NULL: none), found at the ends
    of its range of the candles' key: a lookup per session, where a scan of the run's keys
    grows with its history."""
    def edge(extreme) -> ScalarSelect:
        return select(extreme(OHLCV.timestamp)).where(
            OHLCV.session_id == Session.id, OHLCV.symbol == symbol,
            OHLCV.timeframe == timeframe).scalar_subquery()

    return select(edge(func.min).label("first"), edge(func.max).label("last")).where(
        Session.id.in_(run_ids)).subquery()


def candle_span(
    db: OrmSession, run_ids: Sequence[int], symbol: str, timeframe: str
) -> tuple[datetime | None, datetime | None]:
    """The run's first and last candle of ``timeframe``."""
    per = _session_edges(run_ids, symbol, timeframe)
    row = db.execute(select(func.min(per.c.first), func.max(per.c.last))).one()
    return row[0], row[1]


def session_spans(
    db: OrmSession, run_ids: Sequence[int], symbol: str, timeframe: str
) -> list[tuple[datetime, datetime]]:
    """Each session's first and last candle of ``timeframe``, earliest first (sessions
    without one left out)."""
    per = _session_edges(run_ids, symbol, timeframe)
    return [(first, last) for first, last in db.execute(
        select(per.c.first, per.c.last).where(per.c.first.is_not(None))
        .order_by(per.c.first))]


def candles(
    db: OrmSession,
    run_ids: Sequence[int],
    symbol: str,
    timeframe: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    warmup: int = 0,
) -> tuple[pd.DataFrame, datetime | None]:
    """Candles ascending, plus ``warmup`` earlier ones so indicators start settled.

    Returns the frame and the first timestamp meant for display (None when empty).
    """
    limit = max(1, min(limit, MAX_CANDLES))
    base = select(*(getattr(OHLCV, c) for c in CANDLE_COLUMNS), OHLCV.session_id).where(
        OHLCV.session_id.in_(run_ids), OHLCV.symbol == symbol, OHLCV.timeframe == timeframe
    )
    window = base
    if start is not None:
        window = window.where(OHLCV.timestamp >= start)
    if end is not None:
        window = window.where(OHLCV.timestamp < end)
    # newest `limit` of the window; duplicates across sessions may shrink it a little
    shown = candle_frame(db.execute(window.order_by(OHLCV.timestamp.desc()).limit(limit)).all())
    if shown.empty:
        return shown, None
    first = shown["timestamp"].iloc[0].to_pydatetime()
    if warmup > 0:
        before = base.where(OHLCV.timestamp < first).order_by(OHLCV.timestamp.desc()).limit(warmup)
        earlier = candle_frame(db.execute(before).all())
        shown = pd.concat([earlier, shown]) if not earlier.empty else shown
    return shown.reset_index(drop=True), first


def candle_frame(rows: Sequence) -> pd.DataFrame:
    """Candle rows (with their session_id last) ascending, one per timestamp: the newest
    session's."""
    frame = pd.DataFrame(rows, columns=[*CANDLE_COLUMNS, "session_id"])
    if frame.empty:
        return frame.drop(columns="session_id")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame.sort_values(["timestamp", "session_id"]).drop_duplicates(
        "timestamp", keep="last"
    )
    return frame.drop(columns="session_id").reset_index(drop=True)


def plan_steps(
    db: OrmSession,
    run_ids: Sequence[int],
    symbol: str,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    open_at_end: bool = False,
) -> pd.DataFrame:
    """One row per plan version alive in [start, end]: its levels and when they applied.

    A version applies from its own ``created_at`` until the next version, the plan's close,
    or, for an open plan, ``now`` (or its own time when later); drawing the rows in order
    gives the plan's step line. ``open_at_end`` keeps only the plans still open at ``end``.
    """
    plans = db.execute(
        select(TradePlan.id, TradePlan.side, TradePlan.status, TradePlan.closed_at,
               TradePlan.trace_id).where(
            TradePlan.session_id.in_(run_ids),
            TradePlan.symbol == symbol,
            TradePlan.opened_at <= end,
            or_(TradePlan.closed_at.is_(None),
                TradePlan.closed_at >= (end if open_at_end else start)),
        )
    ).all()
    columns = ["plan_id", "side", "plan_status", "version", "entry", "stop", "target", "size",
               "status", "change", "start", "end", "trace_id"]
    if not plans:
        return pd.DataFrame(columns=columns)
    by_id = {p.id: p for p in plans}
    versions = db.execute(
        select(TradePlanVersion)
        .where(TradePlanVersion.plan_id.in_(by_id))
        .order_by(TradePlanVersion.plan_id, TradePlanVersion.version)
    ).scalars().all()
    rows = []
    for i, v in enumerate(versions):
        plan = by_id[v.plan_id]
        following = versions[i + 1] if i + 1 < len(versions) else None
        if following is not None and following.plan_id == v.plan_id:
            until = following.created_at
        else:
            until = plan.closed_at or max(now, v.created_at)
        if v.status == "closed":
            continue  # the closing snapshot has no lifetime of its own
        rows.append(
            {
                "plan_id": v.plan_id, "side": plan.side, "plan_status": plan.status,
                "version": v.version, "entry": v.entry_price, "stop": v.stop_price,
                "target": v.target_price, "size": v.size, "status": v.status,
                "change": v.change, "start": max(v.created_at, start), "end": min(until, end),
                "trace_id": v.trace_id or plan.trace_id,  # the version's own decision
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    return frame[frame["end"] >= frame["start"]].reset_index(drop=True)


def fills(
    db: OrmSession,
    run_ids: Sequence[int],
    symbol: str,
    start: datetime,
    end: datetime,
    limit: int = 2000,
) -> pd.DataFrame:
    """Our fills in the window (index session_id+symbol+timestamp), for buy/sell markers."""
    rows = db.execute(
        select(
            Trade.timestamp, Trade.action, Trade.quantity, Trade.price, Trade.fee,
            Trade.realized_pnl, Trade.reason, Trade.plan_id, Trade.trace_id,
        )
        .where(
            Trade.session_id.in_(run_ids),
            Trade.symbol == symbol,
            Trade.timestamp >= start,
            Trade.timestamp <= end,
        )
        .order_by(Trade.timestamp)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        rows,
        columns=["timestamp", "action", "quantity", "price", "fee", "realized_pnl", "reason",
                 "plan_id", "trace_id"],
    )
