"""The bot records the market its prices come from; migration 0003 adds where it goes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import partial
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from bot.config import load_settings
from bot.engine.rules import RulesEngine
from bot.loop import start
from bot.runtime import Runtime
from bot.venue.factory import build_venue
from db.engine import make_engine, session_factory
from db.migrate import alembic_config, upgrade
from db.models import BotStatus, Session
from db.paper_store import PaperStore
from tests.conftest import candle_file, database_at
from tests.loop_harness import make_runtime, step

BEFORE = "0002_bots"
T0 = "2026-11-24 10:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgres"])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database at revision 0002 (before the market was recorded)."""
    with database_at(request, tmp_path, BEFORE) as url:
        yield url


def _fill(url: str) -> None:
    """A session and a heartbeat as a bot before 0003 wrote them."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO sessions (date, kind, run_name, mode, venue, starting_balance, "
            "net_pnl, total_fees, total_llm_cost, total_trades, created_at) VALUES "
            "(:d, 'live', 'default', 'PAPER', 'paper', 1000, 1.5, 0.1, 0, 1, :t)"
        ), {"d": date(2026, 11, 24), "t": T0})
        conn.execute(text(
            "INSERT INTO bot_status (name, state, mode, venue, engine, symbols, "
            "loop_interval_seconds, loop_count, paused) VALUES "
            "('default', 'stopped', 'PAPER', 'paper', 'rules', 'BTC/USDT', 10, 42, false)"
        ))
    engine.dispose()


def _columns(url: str, table: str) -> list[str]:
    engine = make_engine(url)
    try:
        return [c["name"] for c in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def test_migration_adds_the_feed_keeping_rows_unknown(old_db: str) -> None:
    _fill(old_db)
    upgrade(old_db)
    with session_factory(make_engine(old_db))() as db:
        session = db.scalars(select(Session)).one()
        assert (session.run_name, session.net_pnl, session.feed) == ("default", 1.5, None)
        status = db.scalars(select(BotStatus)).one()
        assert (status.loop_count, status.feed) == (42, None)


def test_migration_downgrade_drops_the_feed_keeping_rows(old_db: str) -> None:
    _fill(old_db)
    upgrade(old_db)
    assert "feed" in _columns(old_db, "sessions")
    command.downgrade(alembic_config(old_db), BEFORE)
    for table in ("sessions", "bot_status"):
        assert "feed" not in _columns(old_db, table)
    engine = make_engine(old_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 1
    engine.dispose()


def _feeds(rt: Runtime) -> tuple[str | None, list[str | None]]:
    with rt.db() as db:
        beat = db.scalars(select(BotStatus).where(BotStatus.name == rt.settings.bot_name)).one()
        return beat.feed, list(db.scalars(select(Session.feed).order_by(Session.id)))


def test_a_replay_records_its_candle_files(db_url: str) -> None:
    btc = candle_file("BTC_USDT-5m.csv")
    rt = make_runtime(db_url, [btc])
    step(rt, 2)
    assert _feeds(rt) == (f"replay:{btc}", [f"replay:{btc}"])


def test_a_paper_bot_records_its_settings_feed(db_url: str) -> None:
    settings = load_settings(DATABASE_URL=db_url, SYMBOLS="BTC/USDT", FEED="synthetic")
    factory = session_factory(make_engine(db_url))
    rt = Runtime(settings=settings, db=factory, venue=build_venue(settings, partial(PaperStore, factory)),
                 engine=RulesEngine(settings))
    start(rt)
    assert _feeds(rt) == ("synthetic", ["synthetic"])


def test_a_restart_on_another_market_the_same_day_records_it(sqlite_url: str) -> None:
    btc = candle_file("BTC_USDT-5m.csv")
    rt = make_runtime(sqlite_url, [btc])
    with rt.db() as db:  # as written before 0003, or by the same bot on another feed
        db.execute(text("UPDATE sessions SET feed = NULL"))
        db.execute(text("UPDATE bot_status SET feed = 'synthetic'"))
        db.commit()
    rt.session_day = None
    start(rt)
    assert _feeds(rt) == (f"replay:{btc}", [f"replay:{btc}"])


def test_a_ccxt_venue_records_its_own_prices() -> None:
    from bot.venue.ccxt_venue import CcxtVenue

    assert CcxtVenue.market == "venue"
