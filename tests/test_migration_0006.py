"""Migration 0006: sessions gain their run's settings; a run recorded before reads as
"settings not recorded", and a run recorded after beside it still compares."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.config import load_settings
from bot.run_settings import NOT_RECORDED_TEXT, canonical_json, settings_diff, settings_hash, settings_record
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.queries_replays import run_session_ids, run_settings
from tests.conftest import database_at

BEFORE = "0005_replay_finished"
T0 = "2026-12-05 10:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgres"])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, BEFORE) as url:
        yield url


def _insert_session(url: str, run: str, day: str, extra: dict[str, str] | None = None) -> None:
    columns = ", settings, settings_hash" if extra else ""
    values = ", :settings, :settings_hash" if extra else ""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO sessions (date, kind, run_name, mode, venue, starting_balance, net_pnl, "
            f"total_fees, total_llm_cost, total_trades, created_at{columns}) VALUES "
            f"(:d, 'replay', :r, 'PAPER', 'paper', 1000, 0, 0, 0, 0, :t{values})"
        ), {"d": date.fromisoformat(day), "r": run, "t": T0, **(extra or {})})
    engine.dispose()


def test_old_runs_read_as_not_recorded_and_new_ones_compare(old_db: str) -> None:
    _insert_session(old_db, "old-run", "2026-12-05")
    upgrade(old_db)
    record = settings_record(load_settings(MAKER_FEE=0.002), prompt_version="v1")
    _insert_session(old_db, "new-run", "2026-12-06",
                    {"settings": canonical_json(record), "settings_hash": settings_hash(record)})
    with session_factory(make_engine(old_db))() as db:
        old = run_settings(db, run_session_ids(db, "old-run"))
        new = run_settings(db, run_session_ids(db, "new-run"))
    assert old is None
    assert new == record
    assert settings_diff({"old-run": old, "new-run": new}) == []
    third = record | {"maker_fee": 0.001}
    assert settings_diff({"old-run": old, "new-run": new, "third": third}) == [
        {"setting": "Maker fee", "old-run": NOT_RECORDED_TEXT, "new-run": "0.002",
         "third": "0.001"}]
