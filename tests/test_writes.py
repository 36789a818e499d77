"""Read caches keyed on committed writes (db/writes.py) never serve rows that changed.

A cached answer may be reused only while no committed transaction wrote its tables: these
tests write through every path (ORM, table statements, text SQL, a rollback, the reader's
own uncommitted write) and compare the cached answer with a fresh query.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.orm import Session

from db.writes import ReadCache, write_clock

_META = MetaData()
_ROWS = Table("rows", _META, Column("id", Integer, primary_key=True), Column("value", Integer))
_OTHER = Table("other", _META, Column("id", Integer, primary_key=True))


def _setup(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    _META.create_all(engine)
    return engine, ReadCache(write_clock(engine))


def _values(conn) -> list[int]:
    return list(conn.scalars(select(_ROWS.c.value).order_by(_ROWS.c.id)))


def _cached(cache: ReadCache, conn, loads: list[int]) -> list[int]:
    def load() -> list[int]:
        loads.append(1)
        return _values(conn)
    return cache.get(conn, "rows", (), ("rows",), load)


def test_a_committed_write_of_the_table_forgets_the_answer(tmp_path: Path) -> None:
    engine, cache = _setup(tmp_path)
    loads: list[int] = []
    with engine.connect() as reader:
        assert _cached(cache, reader, loads) == []
        assert _cached(cache, reader, loads) == [] and len(loads) == 1
        with engine.begin() as writer:  # another table: the answer holds
            writer.execute(insert(_OTHER), {"id": 1})
        assert _cached(cache, reader, loads) == [] and len(loads) == 1
        with engine.begin() as writer:  # a table statement
            writer.execute(insert(_ROWS), {"value": 1})
        assert _cached(cache, reader, loads) == [1] and len(loads) == 2
        with Session(engine) as session:  # a session, and SQL text naming no table
            session.execute(text("UPDATE rows SET value = 2"))
            session.commit()
        assert _cached(cache, reader, loads) == [2] and len(loads) == 3


def test_a_rolled_back_write_keeps_it_and_an_own_write_is_seen(tmp_path: Path) -> None:
    engine, cache = _setup(tmp_path)
    loads: list[int] = []
    with engine.connect() as reader:
        assert _cached(cache, reader, loads) == []
        with engine.connect() as writer:
            writer.execute(insert(_ROWS), {"value": 1})
            writer.rollback()
        assert _cached(cache, reader, loads) == [] and len(loads) == 1
        reader.execute(insert(_ROWS), {"value": 3})  # uncommitted, in the reader's own txn
        assert _cached(cache, reader, loads) == [3] and len(loads) == 2
        reader.rollback()  # the answer read before it still holds: it was not replaced
        assert _cached(cache, reader, loads) == [] and len(loads) == 2
