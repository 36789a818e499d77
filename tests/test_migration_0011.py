"""Migration 0011: the shadow decision column arrives empty on the traces before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import database_at
from tests.test_migration_0008 import upgraded_with_old_trace


@pytest.fixture(params=["sqlite", "postgres"])
def db_at_0010(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, "0010_equity_steps") as url:
        yield url


def test_old_traces_keep_null_and_new_ones_take_a_shadow(db_at_0010: str) -> None:
    engine = upgraded_with_old_trace(db_at_0010)
    with engine.begin() as conn:
        assert conn.scalar(text("SELECT shadow_decision FROM llm_traces")) is None
        conn.execute(text("UPDATE llm_traces SET shadow_decision = :d"),
                     {"d": '{"actions":[{"action":"HOLD"}]}'})
        assert conn.scalar(text("SELECT shadow_decision FROM llm_traces")) == \
            '{"actions":[{"action":"HOLD"}]}'
    engine.dispose()
