"""The session stats cache: applied per fill, rebuilt from the rows that record the totals.

The cache exists for a fast restart; it is never the source of truth. ``rebuild_stats`` derives
every figure from ``trades`` and ``llm_traces`` so a check can always compare the two.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session as OrmSession

from db.models import LLMTrace, Session, SessionStatsCache, Trade


@dataclass(frozen=True)
class StatsFigures:
    total_trades: int
    total_fees: float
    gross_pnl: float
    total_llm_cost: float
    wins: int
    losses: int
    last_trade_row_id: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def close_to(self, other: StatsFigures, tolerance: float = 1e-6) -> bool:
        return all(
            abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(a)))
            for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)
        )


def figures_from_rows(db: OrmSession, session_id: int) -> StatsFigures:
    trades = db.execute(
        select(
            func.count(Trade.id),
            func.coalesce(func.sum(Trade.fee), 0.0),
            func.coalesce(func.sum(Trade.realized_pnl), 0.0),
            func.coalesce(func.sum(case((Trade.realized_pnl > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(case((Trade.realized_pnl < 0, 1), else_=0)), 0),
            func.coalesce(func.max(Trade.id), 0),
        ).where(Trade.session_id == session_id)
    ).one()
    llm_cost = db.scalar(
        select(func.coalesce(func.sum(LLMTrace.cost), 0.0)).where(LLMTrace.session_id == session_id)
    )
    return StatsFigures(
        total_trades=int(trades[0]), total_fees=float(trades[1]), gross_pnl=float(trades[2]),
        total_llm_cost=float(llm_cost or 0.0), wins=int(trades[3]), losses=int(trades[4]),
        last_trade_row_id=int(trades[5]),
    )


def figures_from_cache(cache: SessionStatsCache) -> StatsFigures:
    return StatsFigures(
        total_trades=cache.total_trades, total_fees=cache.total_fees, gross_pnl=cache.gross_pnl,
        total_llm_cost=cache.total_llm_cost, wins=cache.wins, losses=cache.losses,
        last_trade_row_id=cache.last_trade_row_id,
    )


def _write(db: OrmSession, session_id: int, figures: StatsFigures, now: datetime) -> None:
    cache = db.get(SessionStatsCache, session_id)
    if cache is None:
        cache = SessionStatsCache(session_id=session_id, start_of_day_equity=0.0)
        db.add(cache)
    for key, value in figures.as_dict().items():
        setattr(cache, key, value)
    cache.updated_at = now
    session = db.get(Session, session_id)
    if session is not None:
        session.total_trades = figures.total_trades
        session.total_fees = figures.total_fees
        session.total_llm_cost = figures.total_llm_cost
        session.net_pnl = figures.gross_pnl - figures.total_fees - figures.total_llm_cost


def rebuild_stats(db: OrmSession, session_id: int, now: datetime) -> StatsFigures:
    """Recompute the cache from the rows (on start, and whenever it is stale)."""
    figures = figures_from_rows(db, session_id)
    _write(db, session_id, figures, now)
    return figures


def is_stale(db: OrmSession, session_id: int) -> bool:
    """Stale when a trade row exists that the cache has not counted."""
    cache = db.get(SessionStatsCache, session_id)
    if cache is None:
        return True
    newest = db.scalar(
        select(func.coalesce(func.max(Trade.id), 0)).where(Trade.session_id == session_id)
    )
    count = db.scalar(select(func.count(Trade.id)).where(Trade.session_id == session_id))
    return newest != cache.last_trade_row_id or count != cache.total_trades


def apply_trade(db: OrmSession, trade: Trade, now: datetime) -> None:
    """Add one new fill to the cache and the session, in the caller's transaction."""
    cache = db.get(SessionStatsCache, trade.session_id)
    if cache is None:
        rebuild_stats(db, trade.session_id, now)
        return
    cache.total_trades += 1
    cache.total_fees += trade.fee
    cache.gross_pnl += trade.realized_pnl
    cache.wins += 1 if trade.realized_pnl > 0 else 0
    cache.losses += 1 if trade.realized_pnl < 0 else 0
    cache.last_trade_row_id = max(cache.last_trade_row_id, trade.id)
    cache.updated_at = now
    _sync_session(db, cache)


def apply_llm_cost(db: OrmSession, session_id: int, cost: float, now: datetime) -> None:
    cache = db.get(SessionStatsCache, session_id)
    if cache is None:
        rebuild_stats(db, session_id, now)
        return
    cache.total_llm_cost += cost
    cache.updated_at = now
    _sync_session(db, cache)


def _sync_session(db: OrmSession, cache: SessionStatsCache) -> None:
    session = db.get(Session, cache.session_id)
    if session is None:
        return
    session.total_trades = cache.total_trades
    session.total_fees = cache.total_fees
    session.total_llm_cost = cache.total_llm_cost
    session.net_pnl = cache.gross_pnl - cache.total_fees - cache.total_llm_cost
