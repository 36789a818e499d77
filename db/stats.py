"""The session stats cache: applied per fill, rebuilt from the rows that record the totals.

The cache exists for a fast restart; it is never the source of truth. ``rebuild_stats`` derives
every figure from ``trades`` and ``llm_traces`` so a check can always compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, Row, bindparam, case, func, select, update
from sqlalchemy.orm import Session as OrmSession

from db.core import table_of
from db.models import LLMTrace, MarketData, Position, Session, SessionStatsCache, Trade


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


def stats_caches(db: OrmSession) -> list[SessionStatsCache]:
    """Every session's stats cache row."""
    return list(db.scalars(select(SessionStatsCache)))


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


_CACHE, _SESSIONS = table_of(SessionStatsCache), table_of(Session)
# Built once, on the tables: a fill's figures are added in SQL and the new totals read back
# in the same statement, instead of loading both rows into the ORM to change them.
_ADD_TO_CACHE = (
    update(_CACHE).where(_CACHE.c.session_id == bindparam("of_session"))
    .values(total_trades=_CACHE.c.total_trades + bindparam("trades", type_=Integer),
            total_fees=_CACHE.c.total_fees + bindparam("fees", type_=Float),
            gross_pnl=_CACHE.c.gross_pnl + bindparam("pnl", type_=Float),
            total_llm_cost=_CACHE.c.total_llm_cost + bindparam("llm_cost", type_=Float),
            wins=_CACHE.c.wins + bindparam("won", type_=Integer),
            losses=_CACHE.c.losses + bindparam("lost", type_=Integer),
            last_trade_row_id=case(
                (_CACHE.c.last_trade_row_id > bindparam("row_id", type_=Integer),
                 _CACHE.c.last_trade_row_id), else_=bindparam("row_id", type_=Integer)),
            updated_at=bindparam("now", type_=_CACHE.c.updated_at.type))
    .returning(_CACHE.c.total_trades, _CACHE.c.total_fees, _CACHE.c.gross_pnl,
               _CACHE.c.total_llm_cost))
_SYNC_SESSION = (
    update(_SESSIONS).where(_SESSIONS.c.id == bindparam("of_session"))
    .values(total_trades=bindparam("total_trades"), total_fees=bindparam("total_fees"),
            total_llm_cost=bindparam("total_llm_cost"), net_pnl=bindparam("net_pnl")))


def apply_trade(db: OrmSession, session_id: int, row_id: int, fee: float, realized_pnl: float,
                now: datetime) -> None:
    """Add one new (written) trade row to the cache and the session, in the caller's
    transaction."""
    _add(db, session_id, now, trades=1, fees=fee, pnl=realized_pnl,
         won=1 if realized_pnl > 0 else 0, lost=1 if realized_pnl < 0 else 0, row_id=row_id)


def apply_llm_cost(db: OrmSession, session_id: int, cost: float, now: datetime) -> None:
    _add(db, session_id, now, llm_cost=cost)


# Built once, on the table: four figures, not the ORM row (loading it cost more than the read).
_RISK_FIGURES = select(_CACHE.c.gross_pnl, _CACHE.c.total_fees, _CACHE.c.total_llm_cost,
                       _CACHE.c.start_of_day_equity).where(
    _CACHE.c.session_id == bindparam("of_session"))


def risk_figures(db: OrmSession, session_id: int) -> Row | None:
    """The cache's gross_pnl, total_fees, total_llm_cost and start_of_day_equity (None when
    the session has no cache row): what the risk layer judges an entry on."""
    return db.connection().execute(_RISK_FIGURES, {"of_session": session_id}).first()


def net_realized(db: OrmSession, session_ids: Sequence[int]) -> float:
    """A run's realized PnL less its fees, over ``session_ids`` (its sessions): the cash its
    fills moved beyond what its open positions cost."""
    return float(db.scalar(
        select(func.coalesce(func.sum(SessionStatsCache.gross_pnl - SessionStatsCache.total_fees),
                             0.0))
        .where(SessionStatsCache.session_id.in_(session_ids))) or 0.0)


def carried_unrealized(db: OrmSession, session_id: int) -> float:
    """The unrealized PnL a day started with: the holdings its run's day before ended with
    (that session's position snapshot) at the day's first prices (its first tick of each
    symbol, else the day before's last), less their average cost. The day's own PnL is its
    realized PnL plus the unrealized PnL now less this, as its starting equity counts it."""
    day = db.get(Session, session_id)
    if day is None:
        return 0.0
    before = db.scalar(select(Session.id).where(
        Session.kind == day.kind, Session.run_name == day.run_name, Session.date < day.date,
    ).order_by(Session.date.desc()).limit(1))
    if before is None:
        return 0.0
    total = 0.0
    for symbol, quantity, average in db.execute(
            select(Position.symbol, Position.quantity, Position.avg_price)
            .where(Position.session_id == before, Position.quantity != 0)):
        price = _tick(db, session_id, symbol, first=True) or _tick(db, before, symbol,
                                                                    first=False)
        if price is not None:
            total += quantity * (price - average)
    return total


def _tick(db: OrmSession, session_id: int, symbol: str, *, first: bool) -> float | None:
    order = MarketData.timestamp.asc() if first else MarketData.timestamp.desc()
    return db.scalar(select(MarketData.price).where(
        MarketData.session_id == session_id, MarketData.symbol == symbol).order_by(order).limit(1))


# Set in the writing session's ``info``: ``_add``'s UPDATEs are table statements the unit
# of work does not see, so this is how a session listener learns that the transaction
# changed the figures (``bot.store``).
WROTE_FIGURES = "wrote session figures"


def _add(db: OrmSession, session_id: int, now: datetime, **figures: float | int) -> None:
    """Add ``figures`` to the session's cache (rebuilt when missing) and copy the totals onto
    the session row. Copies of either row this ORM session holds are expired, so they read
    the new figures."""
    db.info[WROTE_FIGURES] = True
    params = {"trades": 0, "fees": 0.0, "pnl": 0.0, "llm_cost": 0.0, "won": 0, "lost": 0,
              "row_id": 0} | figures
    totals = db.execute(_ADD_TO_CACHE, {"of_session": session_id, "now": now, **params}).first()
    if totals is None:
        rebuild_stats(db, session_id, now)
        return
    trades, fees, gross, llm_cost = totals
    db.execute(_SYNC_SESSION, {"of_session": session_id, "total_trades": trades,
                               "total_fees": fees, "total_llm_cost": llm_cost,
                               "net_pnl": gross - fees - llm_cost})
    for model in (SessionStatsCache, Session):
        held = db.identity_map.get(db.identity_key(model, session_id))
        if held is not None:
            db.expire(held)
