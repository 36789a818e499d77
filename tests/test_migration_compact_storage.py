"""Migration 0014: candles keep every row under their natural key, with no index beside
the table on SQLite; traces gain an empty ``system_hash``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from db.engine import make_engine
from db.migrate import alembic_config, upgrade
from db.models import OHLCV
from db.traces import SYSTEM_JOIN, add_trace, trace_texts
from tests.conftest import database_at
from tests.test_migration_0008 import add_old_trace


@pytest.fixture(params=["sqlite", "postgres"])
def db_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, "0013_live_orders_index") as url:
        yield url


def candle(session_id: int, minute: int, close: float) -> dict[str, object]:
    """A 5-minute candle's row, as the loop writes it (the id, before 0014, is the table's)."""
    return {"session_id": session_id, "symbol": "BTC/USDT", "timeframe": "5m",
            "timestamp": datetime(2026, 12, 6, 10, minute, tzinfo=UTC), "open": 1.0,
            "high": 2.0, "low": 0.5, "close": close, "volume": 7.0}


def test_candles_keep_their_rows_keyed_by_symbol_timeframe_and_time(db_before: str) -> None:
    engine = make_engine(db_before)
    with engine.begin() as conn:
        add_old_trace(conn)
        session_id = conn.scalar(text("SELECT max(id) FROM sessions"))
        conn.execute(insert(OHLCV), [candle(session_id, minute, close)
                                     for minute, close in ((5, 101.5), (0, 100.25))])
    upgrade(db_before)
    with engine.begin() as conn:
        rows = conn.execute(select(OHLCV.timestamp, OHLCV.close).order_by(OHLCV.timestamp)).all()
        assert [tuple(r) for r in rows] == [
            (datetime(2026, 12, 6, 10, 0, tzinfo=UTC), 100.25),
            (datetime(2026, 12, 6, 10, 5, tzinfo=UTC), 101.5)]
        assert conn.scalar(text("SELECT system_hash FROM llm_traces")) is None
        found = inspect(conn)
        assert found.get_pk_constraint("ohlcv")["constrained_columns"] == [
            "session_id", "symbol", "timeframe", "timestamp"]
        assert "id" not in {c["name"] for c in found.get_columns("ohlcv")}
        if conn.dialect.name == "sqlite":  # the key's b-tree is the table: no index beside it
            assert conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND tbl_name = 'ohlcv'")) == 0
            assert "WITHOUT ROWID" in conn.scalar(text(
                "SELECT sql FROM sqlite_master WHERE name = 'ohlcv'"))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # a candle is stored once
        conn.execute(insert(OHLCV), candle(session_id, 5, 1.0))
    engine.dispose()


def test_a_downgrade_keeps_each_prompt_whole(db_before: str) -> None:
    """Before 0014 a trace's prompt is one text; going back must not drop its system part
    with the column that names it."""
    upgrade(db_before)
    engine = make_engine(db_before)
    system, rest = "You are a careful trader.", "BTC/USDT 5m rows to 11:55: ..."
    with engine.begin() as conn:
        add_old_trace(conn)
        session_id = conn.scalar(text("SELECT max(id) FROM sessions"))
        trace_id = add_trace(conn, session_id=session_id, engine="gemini", model="m",
                             status="ok", tokens_in=1, tokens_out=1, cost=0.0, latency_ms=1.0,
                             created_at=datetime(2026, 12, 6, 10, tzinfo=UTC),
                             prompt=system + SYSTEM_JOIN + rest, prompt_system=system)
    command.downgrade(alembic_config(db_before), "0013_live_orders_index")
    with engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM llm_traces WHERE id = :id"),
                           {"id": trace_id}).mappings().one()
        assert "system_hash" not in row
        assert trace_texts(conn, row)["prompt"] == system + SYSTEM_JOIN + rest
    engine.dispose()
