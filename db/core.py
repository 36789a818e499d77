"""Core statements on the models' tables, typed as SQLAlchemy cannot type them itself.

Hot writes (trades, traces, snapshots, the paper account) run as Core statements built once
on the tables, skipping the ORM's unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Insert, Table
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session as OrmSession


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Table a model is declared on.

    SQLAlchemy types ``__table__`` as any FromClause (a model may map a subquery), which
    insert(), update() and delete() refuse; every model here is declared by ``__tablename__``.
    """
    table = model.__table__
    assert isinstance(table, Table), f"{model.__name__} is not mapped to a table"
    return table


def insert_one(db: OrmSession | Connection, statement: Insert, fields: Mapping[str, Any]) -> int:
    """Execute a one-row insert; returns the new row's primary key."""
    # Session.execute is typed as returning a Result, but a Core insert's is a CursorResult.
    result = cast(CursorResult[Any], db.execute(statement, fields))
    key = result.inserted_primary_key
    assert key is not None, "a one-row insert always has its primary key"
    return key[0]
