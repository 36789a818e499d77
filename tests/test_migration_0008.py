"""Migration 0008: the trace's reproducibility columns arrive empty on the rows before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from db.engine import make_engine
from db.migrate import upgrade
from tests.conftest import database_at

COLUMNS = ("provider", "model_version", "temperature", "prompt_version", "request_hash",
           "price_source")


@pytest.fixture(params=["sqlite", "postgres"])
def db_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, "0007_notify_failures") as url:
        yield url


def add_old_trace(conn: Connection) -> None:
    """A session and one trace with only the columns every schema since 0002 has."""
    conn.execute(text(
        "INSERT INTO sessions (date, kind, run_name, mode, venue, starting_balance, "
        "net_pnl, total_fees, total_llm_cost, total_trades, created_at, bot_id) VALUES "
        "('2026-12-06', 'live', 'live', 'PAPER', 'paper', 1000, 0, 0, 0, 0, "
        "'2026-12-06 10:00:00+00:00', (SELECT id FROM bots WHERE name = 'default'))"))
    conn.execute(text(
        "INSERT INTO llm_traces (session_id, engine, model, prompt, status, tokens_in, "
        "tokens_out, cost, latency_ms, created_at) VALUES ((SELECT max(id) FROM sessions), "
        "'gemini', 'gemini-2.5-flash', 'p', 'ok', 1, 1, 0.1, 5, "
        "'2026-12-06 10:00:00+00:00')"))


def upgraded_with_old_trace(url: str) -> Engine:
    """The database at ``url`` with a trace written before, upgraded to the head."""
    engine = make_engine(url)
    with engine.begin() as conn:
        add_old_trace(conn)
    upgrade(url)
    return engine


def test_old_traces_keep_null_and_new_ones_take_the_columns(db_at_0005: str) -> None:
    engine = upgraded_with_old_trace(db_at_0005)
    with engine.begin() as conn:
        old = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM llm_traces")).one()
        assert tuple(old) == (None,) * len(COLUMNS)
        conn.execute(text(
            "UPDATE llm_traces SET provider = 'openai', model_version = 'qwen2.5:7b', "
            "temperature = 0.2, prompt_version = 'v1', request_hash = :h, "
            "price_source = 'local'"), {"h": "f" * 64})
        new = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM llm_traces")).one()
    assert tuple(new) == ("openai", "qwen2.5:7b", 0.2, "v1", "f" * 64, "local")
    engine.dispose()
