"""Migration 0002: a single-bot database moves under the bot ``default`` losing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Bot, Command, Session, Trade
from tests.conftest import database_at

BEFORE = "0001_initial"
T0 = "2026-11-24 10:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgres"])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database at revision 0001 (the single-bot schema)."""
    with database_at(request, tmp_path, BEFORE) as url:
        yield url


def _fill_single_bot_db(url: str) -> dict[str, int]:
    """Rows as a single-bot install wrote them: a live run named 'live', a replay, fills."""
    engine = make_engine(url)
    sessions = [("2026-11-23", "live", "live"), ("2026-11-24", "live", "live"),
                ("2026-11-24", "replay", "r1")]
    with engine.begin() as conn:
        for day, kind, run in sessions:
            conn.execute(text(
                "INSERT INTO sessions (date, kind, run_name, mode, venue, starting_balance, "
                "net_pnl, total_fees, total_llm_cost, total_trades, created_at) VALUES "
                "(:d, :k, :r, 'PAPER', 'paper', 1000, 1.5, 0.1, 0, 1, :t)"
            ), {"d": date.fromisoformat(day), "k": kind, "r": run, "t": T0})
        ids = [r[0] for r in conn.execute(text("SELECT id FROM sessions ORDER BY id"))]
        for n, (sid, venue) in enumerate(zip(ids, ["paper:live:live", "paper:live:live",
                                                   "paper:replay:r1"], strict=True)):
            conn.execute(text(
                "INSERT INTO trades (session_id, timestamp, symbol, action, quantity, price, "
                "fee, realized_pnl, venue, trade_id) VALUES "
                "(:s, :t, 'BTC/USDT', 'BUY', 0.1, 100, 0.01, 0, :v, :id)"
            ), {"s": sid, "t": T0, "v": venue, "id": f"f{n}"})
        for n, word in enumerate(["pause", "stop", "close-all"]):
            conn.execute(text(
                "INSERT INTO commands (session_id, command, status, created_at) "
                "VALUES (:s, :c, :st, :t)"
            ), {"s": ids[0], "c": word, "st": "done" if n else "pending", "t": T0})
        conn.execute(text(
            "INSERT INTO bot_status (name, state, mode, venue, engine, symbols, "
            "loop_interval_seconds, loop_count, paused, host, pid, heartbeat_at) VALUES "
            "('default', 'stopped', 'PAPER', 'paper', 'rules', 'BTC/USDT', 10, 42, false, "
            "'old-host', 4242, :t)"
        ), {"t": T0})
    engine.dispose()
    return {"sessions": len(sessions), "trades": len(sessions), "commands": 3}


def test_every_row_is_kept_and_attributed_to_default(old_db: str) -> None:
    counts = _fill_single_bot_db(old_db)
    upgrade(old_db)
    factory = session_factory(make_engine(old_db))
    with factory() as db:
        default = db.scalars(select(Bot)).one()
        assert default.name == "default"
        assert (default.host, default.pid, default.symbols) == ("old-host", 4242, "BTC/USDT")
        assert default.last_seen_at == datetime(2026, 11, 24, 10, tzinfo=UTC)
        sessions = db.scalars(select(Session).order_by(Session.id)).all()
        assert len(sessions) == counts["sessions"]
        assert {s.bot_id for s in sessions} == {default.id}
        # the live run is now named after its bot; the replay keeps its own name
        assert [(s.kind, s.run_name) for s in sessions] == [
            ("live", "default"), ("live", "default"), ("replay", "r1")]
        commands = db.scalars(select(Command).order_by(Command.id)).all()
        assert [(c.command, c.status, c.bot_id) for c in commands] == [
            ("pause", "pending", default.id), ("stop", "done", default.id),
            ("close-all", "done", default.id)]
        assert db.scalar(select(func.count(Trade.id))) == counts["trades"]
        # the default bot's paper fills keep being recognised as booked
        assert sorted(db.scalars(select(Trade.venue))) == [
            "paper:live:default", "paper:live:default", "paper:replay:r1"]


def test_a_migrated_default_bot_takes_its_old_pending_command(old_db: str) -> None:
    from db.commands import pending_commands

    _fill_single_bot_db(old_db)
    upgrade(old_db)
    with session_factory(make_engine(old_db))() as db:
        assert [c.command for c in pending_commands(db, bot="default")] == ["pause"]
        assert pending_commands(db, bot="someone-else") == []


def test_a_fresh_database_registers_no_bot(old_db: str) -> None:
    """An empty database has no bot to move: the fleet and the bot pickers list only bots
    that ran (a never-run 'default' read as a stopped bot of the fleet)."""
    from bot.fleet import fleet_states
    from db.bots import bot_names

    upgrade(old_db)
    with session_factory(make_engine(old_db))() as db:
        assert db.scalars(select(Bot)).all() == []
        assert bot_names(db) == []
        assert fleet_states(db, datetime.now(UTC)) == []


def test_commands_alone_move_under_default(old_db: str) -> None:
    """A single-bot database with only queued commands (no day yet) keeps them, under
    'default'."""
    engine = make_engine(old_db)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO commands (command, status, created_at) "
                          "VALUES ('pause', 'pending', :t)"), {"t": T0})
    engine.dispose()
    upgrade(old_db)
    with session_factory(make_engine(old_db))() as db:
        (default,) = db.scalars(select(Bot)).all()
        assert default.name == "default"
        assert db.scalars(select(Command.bot_id)).all() == [default.id]
