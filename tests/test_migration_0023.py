"""Migration 0023: a paper stop exit's journal row keeps the span it is judged over (rows
stored before keep none, and are sent as before); plan versions are indexed by the decision
that wrote them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Order, Session
from tests.conftest import database_at

AT = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def db_at_0022(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at(request, tmp_path, "0022_plan_version_trace") as url:
        yield url


def _exit_as_0022_stored_it(url: str) -> int:
    """A stop exit journaled by 0022 (no span column); its session's id."""
    engine = make_engine(url)
    with session_factory(engine)() as db:
        session = Session(date=date(2026, 12, 7), kind="live", run_name="live",
                          starting_balance=1000.0, created_at=AT)
        db.add(session)
        db.flush()
        db.execute(text(
            "INSERT INTO orders (session_id, client_order_id, symbol, side, type, amount, "
            "price, purpose, status, attempts, reason, created_at, updated_at) VALUES (:s, "
            "'td-l000001', 'BTC/USDT', 'SELL', 'stop', 0.01, 97.0, 'exit', 'new', 0, "
            "'stop hit at 97', :at, :at)"), {"s": session.id, "at": AT})
        db.commit()
        session_id = session.id
    engine.dispose()
    return session_id


def test_exits_stored_before_keep_no_span_and_new_ones_keep_theirs(db_at_0022: str) -> None:
    session_id = _exit_as_0022_stored_it(db_at_0022)
    upgrade(db_at_0022)
    engine = make_engine(db_at_0022)
    with session_factory(engine)() as db:
        db.add(Order(session_id=session_id, client_order_id="td-l000002", symbol="BTC/USDT",
                     side="SELL", type="stop", amount=0.01, price=97.0, purpose="exit",
                     status="new", reason="stop hit at 97", seen_since_ms=1_765_108_800_000,
                     created_at=AT, updated_at=AT))
        db.commit()
        spans = db.execute(select(Order.client_order_id, Order.seen_since_ms)
                           .order_by(Order.id)).all()
    indexed = {tuple(i["column_names"]) for i in inspect(engine).get_indexes(
        "trade_plan_versions")}
    engine.dispose()
    assert [tuple(row) for row in spans] == [("td-l000001", None),
                                             ("td-l000002", 1_765_108_800_000)]
    assert ("trace_id",) in indexed
