"""The Trades page over a whole run from closed sessions' fill totals and the open day's
rows equals the same figures summed here over the fills the test writes; any other filter
reads the rows."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from db import fill_totals
from db.engine import make_engine, session_factory
from db.migrate import alembic_config, upgrade
from db.models import PerformanceRollup, Session, Trade
from db.performance_rollups import roll_up_closed, roll_up_every_run
from db.queries_trading import TradeFilter, trade_symbols, trade_totals, trades

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
RUNS = itertools.count()

fills_ = st.lists(st.tuples(
    st.integers(0, 4),  # day
    st.integers(0, 86_399),  # second of it
    st.sampled_from(["BTC/USDT", "ETH/USDT", "SOL/USDT"]),
    st.sampled_from(["BUY", "SELL"]),
    st.floats(0.001, 50.0), st.floats(1.0, 70_000.0), st.floats(0.0, 5.0),
    st.sampled_from([0.0, 0.0, 12.5, -3.25]) | st.floats(-100.0, 100.0),
    st.booleans(),  # booked late: in the next day's session
), max_size=40)


@pytest.fixture(autouse=True)
def _two_spans_a_read(monkeypatch) -> None:
    """The newest sessions are read two at a time, so a page spans several reads."""
    monkeypatch.setattr(fill_totals, "SPAN_CHUNK", 2)

# The next day's session holds the newest fill and one of day 0 booked late; day 0's own
# session holds a fill newer than that late one: the newest two span both sessions.
LATE_AMONG_NEWEST = [(0, 36_000, "BTC/USDT", "BUY", 1.0, 100.0, 0.1, 0.0, False),
                     (0, 82_800, "BTC/USDT", "SELL", 1.0, 101.0, 0.1, 1.0, True),
                     (0, 84_000, "ETH/USDT", "BUY", 1.0, 50.0, 0.1, 0.0, False),
                     (1, 3_600, "ETH/USDT", "SELL", 1.0, 49.0, 0.1, -1.0, False)]


def record(db, fills: list[tuple]) -> tuple[list[int], list[Trade]]:
    """A replay run with a session a day from DAY0 to the last fill's day (one more when a
    fill of it is booked late)."""
    run = f"fills-{next(RUNS)}"
    last = max([day + late for day, *_, late in fills], default=0)
    ids = []
    for day in range(last + 1):
        row = Session(date=(DAY0 + timedelta(days=day)).date(), kind="replay", run_name=run,
                      mode="PAPER", venue="paper", starting_balance=100.0,
                      created_at=DAY0 + timedelta(days=day))
        db.add(row)
        db.flush()
        ids.append(row.id)
    rows = []
    for n, (day, second, symbol, side, quantity, price, fee, pnl, late) in enumerate(fills):
        rows.append(Trade(session_id=ids[day + late], symbol=symbol, action=side,
                          timestamp=DAY0 + timedelta(days=day, seconds=second),
                          quantity=quantity, price=price, fee=fee, realized_pnl=pnl,
                          venue="paper", trade_id=f"{run}-{n}"))
    db.add_all(rows)
    db.commit()
    return ids, rows


def assert_equals_reference(db, ids: list[int], rows: list[Trade], limit: int) -> None:
    where = TradeFilter(tuple(ids))
    assert trade_symbols(db, ids) == sorted({r.symbol for r in rows})
    totals = trade_totals(db, where)
    assert totals["count"] == len(rows)
    assert totals["wins"] == sum(1 for r in rows if r.realized_pnl > 0)
    assert totals["losses"] == sum(1 for r in rows if r.realized_pnl < 0)
    for key, expected in (("notional", sum(r.quantity * r.price for r in rows)),
                          ("fees", sum(r.fee for r in rows)),
                          ("realized_pnl", sum(r.realized_pnl for r in rows))):
        assert totals[key] == pytest.approx(expected, rel=1e-9, abs=1e-9), key
    newest = sorted(rows, key=lambda r: (r.timestamp, r.id), reverse=True)
    for offset in (0, limit):
        page = trades(db, where, limit=limit, offset=offset)
        assert list(page["id"]) == [r.id for r in newest[offset:offset + limit]]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fills_, st.booleans(), st.integers(1, 8))
@example(LATE_AMONG_NEWEST, False, 2)
@example(LATE_AMONG_NEWEST, True, 2)
def test_totals_from_rollups_equal_the_fills(db_session, fills, finished, limit) -> None:
    """Random fills over days, some booked in the next day's session: symbols, totals and
    the newest pages of the whole run, with every closed session rolled up (all, for a
    finished run), equal the sums over the fills written."""
    ids, rows = record(db_session, fills)
    roll_up_closed(db_session, ids, None if finished else ids[-1])
    assert_equals_reference(db_session, ids, rows, limit)


def test_a_closed_sessions_totals_are_read_from_its_rollup_unless_filtered(db_session
                                                                            ) -> None:
    """The whole run reads a closed session's totals off its rollup (set apart here to see
    it), the open one's off its rows; a symbol filter reads every row."""
    fills = [(0, 60, "BTC/USDT", "BUY", 1.0, 100.0, 0.1, 0.0, False),
             (0, 120, "BTC/USDT", "SELL", 1.0, 110.0, 0.1, 10.0, True),
             (1, 60, "ETH/USDT", "BUY", 2.0, 50.0, 0.2, 0.0, False)]
    ids, rows = record(db_session, fills)
    assert roll_up_closed(db_session, ids, ids[-1]) == 1
    db_session.execute(update(PerformanceRollup).where(PerformanceRollup.session_id == ids[0])
                       .values(fill_count=1000, fill_symbols='["XRP/USDT"]'))
    db_session.commit()
    where = TradeFilter(tuple(ids))
    assert trade_totals(db_session, where)["count"] == 1002  # the late fill is in the open one
    assert trade_symbols(db_session, ids) == ["BTC/USDT", "ETH/USDT", "XRP/USDT"]
    filtered = replace(where, symbols=("BTC/USDT", "ETH/USDT"))
    assert trade_totals(db_session, filtered)["count"] == len(rows)


def test_on_both_stores_and_an_upgrade_backfills_them(db_url) -> None:
    """On SQLite and PostgreSQL, fill totals written as sessions close equal the fills'
    sums; downgraded to before them and upgraded, the backfill writes the same ones."""
    fills = [(day, 3_000 * k + day, ["BTC/USDT", "ETH/USDT"][k % 2], ["BUY", "SELL"][k % 3 > 0],
              0.5 + k / 7, 100.0 + k * 1.37, k / 100, [0.0, 4.2, -1.7][k % 3], k % 5 == 0)
             for day in range(4) for k in range(9)]
    engine = make_engine(db_url)
    columns = [getattr(PerformanceRollup, c.key) for c in PerformanceRollup.__table__.columns
               if c.key.startswith("fill_") or c.key == "session_id"]
    with session_factory(engine)() as db:
        ids, rows = record(db, fills)
        assert roll_up_every_run(db) == len(ids) - 1  # not finished: all but the open one
        written = sorted(db.execute(select(*columns)).all())
        assert [w[1] for w in written] == [sum(1 for r in rows if r.session_id == s)
                                           for s in ids[:-1]]
        assert_equals_reference(db, ids, rows, 5)
    command.downgrade(alembic_config(db_url), "0017_orders_plan_index")
    upgrade(db_url)
    with session_factory(engine)() as db:
        assert sorted(db.execute(select(*columns)).all()) == written
        assert_equals_reference(db, ids, rows, 5)
    engine.dispose()
