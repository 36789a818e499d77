"""The venue snapshots resync keeps current at every iteration: our open orders and positions.

The writes are statements on the tables, built once, run on the session's connection: they
skip building a statement, the ORM's unit of work and its execute path each time (the loop
never reads these rows back as objects; the audit does, ``positions_of_session``). All write
uncommitted, in the transaction of the session or Core connection they are given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session as OrmSession

from db.core import table_of
from db.models import OpenOrder, Position

_OPEN, _POSITIONS = table_of(OpenOrder), table_of(Position)
_CLEAR_ORDERS = delete(_OPEN).where(_OPEN.c.session_id == bindparam("session_id"))
_ADD_ORDERS = insert(_OPEN)
_CLEAR_POSITIONS = delete(_POSITIONS).where(_POSITIONS.c.session_id == bindparam("session_id"))
_ADD_POSITIONS = insert(_POSITIONS)
_STAMP_POSITIONS = (update(_POSITIONS).where(_POSITIONS.c.session_id == bindparam("of_session"))
                    .values(exchange_timestamp=bindparam("stamp")))


def _connection(db: OrmSession | Connection) -> Connection:
    return db.connection() if isinstance(db, OrmSession) else db


def replace_open_orders(db: OrmSession, session_id: int, rows: list[dict[str, Any]]) -> None:
    """The session's open-order snapshot becomes ``rows`` (column name → value each)."""
    db.connection().execute(_CLEAR_ORDERS, {"session_id": session_id})
    if rows:
        db.connection().execute(_ADD_ORDERS, [{"session_id": session_id, **row} for row in rows])


def replace_positions(
    db: OrmSession | Connection, session_id: int, rows: list[dict[str, Any]]
) -> None:
    """The session's position snapshot becomes ``rows`` (column name → value each)."""
    _connection(db).execute(_CLEAR_POSITIONS, {"session_id": session_id})
    if rows:
        _connection(db).execute(_ADD_POSITIONS, [{"session_id": session_id, **row} for row in rows])


def stamp_positions(db: OrmSession | Connection, session_id: int, stamp: datetime) -> None:
    """The session's positions, unchanged, are as of ``stamp``: one UPDATE, not a rewrite."""
    _connection(db).execute(_STAMP_POSITIONS, {"of_session": session_id, "stamp": stamp})


def positions_of_session(db: OrmSession, session_id: int) -> list[Position]:
    """The session's position snapshot, as resync last wrote it."""
    return list(db.scalars(select(Position).where(Position.session_id == session_id)))
