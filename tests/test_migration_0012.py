"""Migration 0012: a replay run finished before it has no recorded summary (it is computed
from its rows, as it was); a run finishing after records one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.replay_runs import finished_summary, mark_finished
from tests.conftest import database_at


@pytest.fixture(params=["sqlite", "postgres"])
def db_at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, "0011_shadow_decision") as url:
        yield url


def test_a_run_finished_before_has_no_summary_and_one_finishing_after_records_it(
        db_at_0011: str) -> None:
    engine = make_engine(db_at_0011)
    with engine.begin() as conn:
        for account, finished in (("old-run", "2026-12-06 10:00:00+00:00"), ("new-run", None)):
            conn.execute(text(
                "INSERT INTO paper_clock (account, now_ms, seq, feed, finished_at) "
                "VALUES (:account, 1, 0, '{}', :finished)"),
                {"account": account, "finished": finished})
    upgrade(db_at_0011)
    with session_factory(engine)() as db:
        assert finished_summary(db, "old-run") is None
        mark_finished(db, "new-run", datetime(2026, 12, 7, tzinfo=UTC),
                      {"fingerprint": "5a1fa074fda8aef3", "trades": 3})
        assert finished_summary(db, "new-run") == {"fingerprint": "5a1fa074fda8aef3",
                                                   "trades": 3}
        assert finished_summary(db, "old-run") is None
    engine.dispose()
