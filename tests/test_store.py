"""Models and migrations on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic.ddl.impl import DefaultImpl
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from db.engine import make_engine, normalize_url, session_factory
from db.migrate import DatabaseError, head_revision, upgrade
from db.models import OHLCV, Base, Session, Trade
from db.sessions import open_session
from db.stats import apply_trade, figures_from_cache, figures_from_rows, rebuild_stats

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _session(db) -> Session:
    return open_session(db, kind="live", run_name="live", day=date(2024, 1, 2), mode="PAPER",
                        venue="paper", feed="synthetic", equity=1000.0, now=NOW)


def test_migrations_create_every_model_table(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with engine.connect() as conn:
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert version == head_revision(db_url)
    upgrade(db_url)  # a second upgrade is a no-op
    engine.dispose()


def test_timestamps_round_trip_as_aware_utc(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        session = _session(db)
        db.add(OHLCV(session_id=session.id, symbol="BTC/USDT", timeframe="5m", timestamp=NOW,
                     open=1, high=2, low=0.5, close=1.5, volume=10))
        db.commit()
    with session_factory(engine)() as db:
        candle = db.scalars(select(OHLCV)).one()
        assert candle.timestamp == NOW and candle.timestamp.tzinfo is not None
        with pytest.raises(Exception, match="naive datetime"):
            db.add(OHLCV(session_id=session.id, symbol="BTC/USDT", timeframe="5m",
                         timestamp=datetime(2024, 1, 1), open=1, high=1, low=1, close=1, volume=1))
            db.flush()
    engine.dispose()


def test_unique_keys_guard_candles_and_venue_trade_ids(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    with factory() as db:
        session = _session(db)
        row = dict(session_id=session.id, timestamp=NOW, symbol="BTC/USDT", action="BUY",
                   quantity=1.0, price=100.0, venue="paper:live:live", trade_id="t-1")
        db.add(Trade(**row))
        db.commit()
        db.add(Trade(**row))
        with pytest.raises(IntegrityError):
            db.commit()
        db.rollback()
        candle = dict(session_id=session.id, symbol="BTC/USDT", timeframe="5m", timestamp=NOW,
                      open=1, high=1, low=1, close=1, volume=1)
        db.add(OHLCV(**candle))
        db.commit()
        db.add(OHLCV(**candle))
        with pytest.raises(IntegrityError):
            db.commit()
    engine.dispose()


def test_foreign_keys_are_enforced(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        db.add(Trade(session_id=9999, timestamp=NOW, symbol="X/Y", action="BUY", quantity=1,
                     price=1, trade_id="x"))
        with pytest.raises(IntegrityError):
            db.commit()
    engine.dispose()


def test_stats_cache_applied_per_fill_equals_rebuild(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        session = _session(db)
        for n, (pnl, fee) in enumerate([(0.0, 0.1), (5.0, 0.1), (-2.0, 0.2), (1.5, 0.05)]):
            trade = Trade(session_id=session.id, timestamp=NOW, symbol="BTC/USDT",
                          action="SELL" if pnl else "BUY", quantity=1, price=100,
                          fee=fee, realized_pnl=pnl, venue="v", trade_id=str(n))
            db.add(trade)
            db.flush()
            apply_trade(db, trade.session_id, trade.id, trade.fee, trade.realized_pnl, NOW)
            db.commit()
        cached = figures_from_cache(session.stats)
        assert cached.close_to(figures_from_rows(db, session.id))
        assert (cached.total_trades, cached.wins, cached.losses) == (4, 2, 1)
        assert cached.gross_pnl == pytest.approx(4.5)
        assert session.net_pnl == pytest.approx(4.5 - 0.45)
        assert rebuild_stats(db, session.id, NOW).close_to(cached)
    engine.dispose()


def test_foreign_database_is_refused_not_overwritten(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("create table precious (x int)"))
    with pytest.raises(DatabaseError, match="refusing to touch it"):
        upgrade(url)
    assert inspect(engine).get_table_names() == ["precious"]
    engine.dispose()


def test_a_schema_creation_cut_short_leaves_nothing_and_the_next_start_completes_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bot killed while it creates the schema must not leave a half-made database that
    the next start refuses as not ours: the creation lands whole or not at all."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    create_table, created = DefaultImpl.create_table, []

    def dies_at_the_fifth_table(impl: DefaultImpl, table, **kw):
        if len(created) == 4:
            raise RuntimeError("the process dies here")
        created.append(table.name)
        return create_table(impl, table, **kw)

    monkeypatch.setattr(DefaultImpl, "create_table", dies_at_the_fifth_table)
    with pytest.raises(RuntimeError, match="dies here"):
        upgrade(url)
    engine = make_engine(url)
    assert len(created) == 4
    assert inspect(engine).get_table_names() == []
    monkeypatch.undo()
    upgrade(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == (
            head_revision(url))
    engine.dispose()


def test_plain_postgres_urls_map_to_the_shipped_driver() -> None:
    assert normalize_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalize_url("postgres://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
        assert conn.execute(text("pragma foreign_keys")).scalar() == 1
        assert conn.execute(text("pragma busy_timeout")).scalar() >= 1000
    engine.dispose()
