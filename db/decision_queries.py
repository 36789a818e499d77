"""Read queries behind the decision context: what an engine may know at one instant.

Every query that touches time takes ``now`` and never returns a row from after it, and
candles only once they have closed (``timestamp + timeframe <= now``), so a replay cannot
leak the future into a decision.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from db.models import (
    OHLCV,
    LLMTrace,
    MarketData,
    OpenOrder,
    Position,
    SessionStatsCache,
    Trade,
    TradePlan,
)
from db.models import Session as TradingSession

CANDLE_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
_TIMEFRAME_RE = re.compile(r"^(\d+)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_delta(timeframe: str) -> timedelta:
    """Length of one candle; a timeframe we cannot read is an error, never a guess."""
    match = _TIMEFRAME_RE.match(timeframe)
    if not match:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def positions(db: DbSession, session_id: int) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(Position)
        .where(Position.session_id == session_id, Position.quantity != 0)
        .order_by(Position.symbol)
    )
    return [
        {"symbol": p.symbol, "quantity": p.quantity, "avg_price": p.avg_price,
         "exchange_timestamp": p.exchange_timestamp}
        for p in rows
    ]


def open_orders(db: DbSession, session_id: int) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(OpenOrder).where(OpenOrder.session_id == session_id).order_by(OpenOrder.id)
    )
    return [
        {"order_id": o.order_id, "client_order_id": o.client_order_id, "symbol": o.symbol,
         "side": o.side, "type": o.type, "price": o.price, "amount": o.amount,
         "remaining": o.remaining, "status": o.status}
        for o in rows
    ]


def open_plans(db: DbSession, session_id: int) -> list[dict[str, Any]]:
    """Plans not yet closed, from every day of the run: plans outlive the day they opened."""
    session = db.get(TradingSession, session_id)
    run = select(TradingSession.id).where(TradingSession.kind == session.kind,
                                          TradingSession.run_name == session.run_name)
    rows = db.scalars(
        select(TradePlan)
        .where(TradePlan.session_id.in_(run), TradePlan.status != "closed")
        .order_by(TradePlan.id)
    )
    return [
        {"id": p.id, "symbol": p.symbol, "side": p.side, "entry_price": p.entry_price,
         "stop_price": p.stop_price, "target_price": p.target_price, "size": p.size,
         "filled_size": p.filled_size, "status": p.status, "version": p.version,
         "reason": p.reason, "opened_at": p.opened_at}
        for p in rows
    ]


def recent_trades(
    db: DbSession, session_id: int, now: datetime, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest fills up to ``now``, returned oldest first (the order a prompt reads)."""
    rows = list(
        db.scalars(
            select(Trade)
            .where(Trade.session_id == session_id, Trade.timestamp <= now)
            .order_by(Trade.timestamp.desc(), Trade.id.desc())
            .limit(limit)
        )
    )
    rows.reverse()
    return [
        {"timestamp": t.timestamp, "symbol": t.symbol, "action": t.action,
         "quantity": t.quantity, "price": t.price, "fee": t.fee,
         "realized_pnl": t.realized_pnl, "reason": t.reason, "plan_id": t.plan_id}
        for t in rows
    ]


def session_stats(db: DbSession, session_id: int) -> dict[str, Any]:
    """Aggregates of the session; LLM cost is the largest of the three places it is kept.

    The cost cap must not be fooled by a stale cache, so the sum of the traces counts too.
    """
    session = db.get(TradingSession, session_id)
    cache = db.get(SessionStatsCache, session_id)
    traced_cost = db.scalar(
        select(func.coalesce(func.sum(LLMTrace.cost), 0.0)).where(
            LLMTrace.session_id == session_id
        )
    )
    stats: dict[str, Any] = {
        "net_pnl": session.net_pnl if session else 0.0,
        "total_fees": session.total_fees if session else 0.0,
        "total_trades": session.total_trades if session else 0,
        "starting_balance": session.starting_balance if session else 0.0,
    }
    llm_costs = [float(traced_cost or 0.0), session.total_llm_cost if session else 0.0]
    if cache is not None:
        stats.update(
            total_trades=max(stats["total_trades"], cache.total_trades),
            total_fees=max(stats["total_fees"], cache.total_fees),
            gross_pnl=cache.gross_pnl,
            start_of_day_equity=cache.start_of_day_equity,
            wins=cache.wins,
            losses=cache.losses,
        )
        llm_costs.append(cache.total_llm_cost)
    stats["total_llm_cost"] = max(llm_costs)
    return stats


def latest_market(
    db: DbSession, session_id: int, symbol: str, now: datetime
) -> dict[str, Any] | None:
    """The newest ticker snapshot taken at or before ``now``."""
    row = db.scalars(
        select(MarketData)
        .where(
            MarketData.session_id == session_id,
            MarketData.symbol == symbol,
            MarketData.timestamp <= now,
        )
        .order_by(MarketData.timestamp.desc(), MarketData.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {"timestamp": row.timestamp, "price": row.price, "bid": row.bid, "ask": row.ask,
            "spread_pct": row.spread_pct, "ob_imbalance": row.ob_imbalance,
            "volume": row.volume}


def closed_candles(
    db: DbSession, session_id: int, symbol: str, timeframe: str, now: datetime, limit: int
) -> pd.DataFrame:
    """The newest ``limit`` candles that had closed by ``now``, oldest first."""
    cutoff = now - timeframe_delta(timeframe)
    rows = db.execute(
        select(OHLCV.timestamp, OHLCV.open, OHLCV.high, OHLCV.low, OHLCV.close, OHLCV.volume)
        .where(
            OHLCV.session_id == session_id,
            OHLCV.symbol == symbol,
            OHLCV.timeframe == timeframe,
            OHLCV.timestamp <= cutoff,
        )
        .order_by(OHLCV.timestamp.desc())
        .limit(limit)
    ).all()
    frame = pd.DataFrame([tuple(r) for r in reversed(rows)], columns=CANDLE_COLUMNS)
    if not frame.empty:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        for column in CANDLE_COLUMNS[1:]:
            frame[column] = frame[column].astype(float)
    return frame
