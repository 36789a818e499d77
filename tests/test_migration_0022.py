"""Migration 0022: plan versions name the decision that wrote them; those stored before name
none, and read as they did."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Session, TradePlan
from db.plans import revise_plan
from db.queries_trading import plan_versions
from db.traces import add_trace
from tests.conftest import database_at

AT = datetime(2026, 12, 6, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def db_at_0021(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, "0021_trace_cache_tokens") as url:
        yield url


def _plan_with_versions(url: str) -> tuple[int, int]:
    """A plan and its two versions as 0021 stored them (no trace column): the plan's id and
    its opening decision's trace."""
    engine = make_engine(url)
    with session_factory(engine)() as db:
        session = Session(date=date(2026, 12, 6), kind="live", run_name="live",
                          starting_balance=1000.0, created_at=AT)
        db.add(session)
        db.flush()
        trace_id = add_trace(db, session_id=session.id, engine="rules", prompt="buy",
                             created_at=AT)
        plan = TradePlan(session_id=session.id, symbol="BTC/USDT", side="BUY",
                         entry_price=100.0, stop_price=97.0, target_price=110.0, size=1.0,
                         status="open", version=2, trace_id=trace_id, opened_at=AT)
        db.add(plan)
        db.flush()
        for version, stop, change in ((1, 95.0, "opened"), (2, 97.0, "updated: tighter")):
            db.execute(text(
                "INSERT INTO trade_plan_versions (plan_id, version, entry_price, stop_price, "
                "target_price, size, status, change, created_at) VALUES (:plan, :version, "
                "100.0, :stop, 110.0, 1.0, 'open', :change, :at)"),
                {"plan": plan.id, "version": version, "stop": stop, "change": change, "at": AT})
        db.commit()
        ids = plan.id, trace_id
    engine.dispose()
    return ids


def test_versions_stored_before_name_no_decision_and_new_ones_name_theirs(
        db_at_0021: str) -> None:
    plan_id, trace_id = _plan_with_versions(db_at_0021)
    upgrade(db_at_0021)
    engine = make_engine(db_at_0021)
    with session_factory(engine)() as db:
        plan = db.get(TradePlan, plan_id)
        assert plan is not None
        revise_plan(db, plan, "updated: wider", AT, decided_by=trace_id, stop_price=96.0)
        db.commit()
        versions = plan_versions(db, plan_id)
    engine.dispose()
    assert versions["stop_price"].tolist() == [95.0, 97.0, 96.0]
    assert [None if t != t else int(t) for t in versions["trace_id"]] == [None, None, trace_id]
