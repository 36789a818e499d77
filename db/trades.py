"""Booked fills: the ``trades`` rows fill sync writes, one per venue fill, and their lookups.

Statements built once, on the table: a fill is booked with one INSERT on the session's
connection, without the ORM's unit of work (nothing reads the row back as an object in the
transaction that writes it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select
from sqlalchemy.orm import Session as OrmSession

from db.core import insert_one, table_of
from db.models import Trade
from db.performance_rollups import void_from
from db.stats import apply_trade

_TRADES = table_of(Trade)
_ADD = insert(_TRADES)
_BOOKED = select(_TRADES.c.trade_id).where(
    _TRADES.c.venue == bindparam("venue"),
    _TRADES.c.trade_id.in_(bindparam("trade_ids", expanding=True)))


def booked_trade_ids(db: OrmSession, venue: str, trade_ids: set[str]) -> set[str]:
    """Which of ``trade_ids`` (venue fill ids) are booked already for ``venue``."""
    if not trade_ids:
        return set()
    return set(db.scalars(_BOOKED, {"venue": venue, "trade_ids": sorted(trade_ids)}))


def record_trade(db: OrmSession, now: datetime, **fields: Any) -> int:
    """Insert one fill's row (``fields``: the ``trades`` columns) and add it to its session's
    stats, uncommitted; returns the row id. Raises IntegrityError, before writing anything,
    for a fill (venue, trade_id) already booked. A session already rolled up is rolled up
    again (``db.performance_rollups.void_from``)."""
    row_id = insert_one(db, _ADD, fields)
    apply_trade(db, fields["session_id"], row_id, fields["fee"], fields["realized_pnl"], now)
    void_from(db, fields["session_id"])
    return row_id


_BOOKED_QUANTITY = select(func.coalesce(func.sum(_TRADES.c.quantity), 0.0)).where(
    _TRADES.c.client_order_id == bindparam("client_order_id"))


def booked_quantity(db: OrmSession, client_order_id: str) -> float:
    """What the booked fills of one order add up to (0 when none is booked)."""
    return db.execute(_BOOKED_QUANTITY, {"client_order_id": client_order_id}).scalar_one()


_PLAN_SALES = select(
    func.count(_TRADES.c.id), func.coalesce(func.sum(_TRADES.c.quantity), 0.0),
    func.coalesce(func.sum(_TRADES.c.quantity * _TRADES.c.price), 0.0),
    func.coalesce(func.sum(_TRADES.c.realized_pnl), 0.0),
).where(_TRADES.c.plan_id == bindparam("plan_id"), _TRADES.c.action == bindparam("side"))


def plan_fills(db: OrmSession, plan_id: int, side: str) -> Row[int, float, float, float]:
    """The plan's booked fills on one side: how many, their quantity, their value in quote
    and their realized PnL (a plan closed in parts told as a whole)."""
    return db.execute(_PLAN_SALES, {"plan_id": plan_id, "side": side}).one()


def fills_of_sessions(db: OrmSession, session_ids: list[int]) -> list[Row]:
    """The sessions' fills, oldest first: (symbol, action, quantity, price, timestamp) each,
    what a position book is folded from."""
    return list(db.execute(
        select(Trade.symbol, Trade.action, Trade.quantity, Trade.price, Trade.timestamp)
        .where(Trade.session_id.in_(session_ids))
        .order_by(Trade.id)
    ).all())


def duplicate_fills(db: OrmSession) -> list[Row]:
    """(venue, trade_id, count) of every venue fill booked more than once; none is right."""
    return list(db.execute(
        select(Trade.venue, Trade.trade_id, func.count())
        .group_by(Trade.venue, Trade.trade_id)
        .having(func.count() > 1)
    ).all())
