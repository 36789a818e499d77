"""Booked fills: the ``trades`` rows fill sync writes, one per venue fill, and their lookups.

Statements built once, on the table: a fill is booked with one INSERT on the session's
connection, without the ORM's unit of work (nothing reads the row back as an object in the
transaction that writes it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session as OrmSession

from db.core import insert_one, table_of
from db.models import Trade
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
    for a fill (venue, trade_id) already booked."""
    row_id = insert_one(db, _ADD, fields)
    apply_trade(db, fields["session_id"], row_id, fields["fee"], fields["realized_pnl"], now)
    return row_id
