"""A run's equity curve and summary come from the narrow ``equity_steps``, never the traces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import EquityStep, LLMTrace
from db.queries_replays import (
    MAX_CURVE_POINTS,
    computed_summary,
    equity_curve,
    run_session_ids,
    run_summary,
)
from tests.conftest import database_at
from tests.test_replay import write_candles
from tests.test_trace_blobs import T0, add_session


def test_a_run_reads_the_same_with_its_traces_emptied(tmp_path) -> None:
    closes = [22000 + 60 * ((i % 30) - 15) / 15 + i * 0.8 for i in range(260)]
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv", closes)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    summary = run_replay(ReplayArgs([candles], url), progress=False)
    assert summary["trades"] > 0 and summary["exposure_time_pct"] > 0
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            ids = run_session_ids(db, summary["run_name"])
            curve = equity_curve(db, ids, 10_000.0)
            steps = db.scalars(select(EquityStep)).all()
            traced = db.scalars(select(LLMTrace.execution_result)
                                .where(LLMTrace.execution_result.is_not(None))).all()
            assert len(steps) == len(traced) == len(curve) > 50
            assert not any("equity" in json.loads(t) for t in traced)  # the steps hold it
            db.execute(update(LLMTrace).values(execution_result=None))
            db.commit()
            again = {**computed_summary(db, ids, 10_000.0, summary["run_name"]),
                     "warnings": summary["warnings"],
                     "contamination": summary["contamination"]}
            assert again == summary
            assert equity_curve(db, ids, 10_000.0).equals(curve)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def traced_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the revision before ``equity_steps`` with two decided steps traced
    (one of them in a foreign, non-JSON form) and one abandoned, upgraded to the head."""
    with database_at(request, tmp_path, "0009_trace_blobs") as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            add_session(conn, "replay", "r1")
            results = [json.dumps({"equity": 1000.0, "exposure": 0.0,
                                   "prices": {"BTC/USDT": 100.0}, "actions": []}),
                       "executed by hand", None,
                       json.dumps({"equity": 990.0, "exposure": 50.0,
                                   "prices": {"BTC/USDT": 110.0}, "actions": []})]
            for k, result in enumerate(results):
                conn.execute(text(
                    "INSERT INTO llm_traces (session_id, engine, prompt, status, tokens_in, "
                    "tokens_out, cost, latency_ms, created_at, execution_result) VALUES "
                    "(1, 'rules', '', 'ok', 0, 0, 0, 1, :t, :r)"),
                    {"t": T0 + timedelta(minutes=5 * k), "r": result})
        engine.dispose()
        upgrade(url)
        yield url


def test_the_upgrade_fills_equity_steps_from_the_traces(traced_db) -> None:
    engine = make_engine(traced_db)
    try:
        with session_factory(engine)() as db:
            steps = db.execute(select(EquityStep.created_at, EquityStep.equity,
                                      EquityStep.exposure, EquityStep.prices)
                               .order_by(EquityStep.id)).all()
            assert [(s.created_at, s.equity, s.exposure, json.loads(s.prices)) for s in steps] == [
                (T0, 1000.0, 0.0, {"BTC/USDT": 100.0}),
                (T0 + timedelta(minutes=15), 990.0, 50.0, {"BTC/USDT": 110.0})]
            summary = run_summary(db, [1], 1000.0, "r1")
            assert summary["buy_and_hold_pct"] == pytest.approx(10.0)
            assert summary["exposure_time_pct"] == 50.0
            assert summary["max_drawdown_pct"] == pytest.approx(1.0)
    finally:
        engine.dispose()


def test_a_long_curve_is_thinned_to_evenly_spaced_steps_keeping_its_first_and_last(
        sqlite_url: str) -> None:
    """Two days of a run, another run's steps written in between: the curve keeps about
    MAX_CURVE_POINTS of the run's own steps, in order, its first and last among them."""
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        for name in ("day 1", "other", "day 2"):
            add_session(conn, "replay", name)
        rows = [{"s": 1 if k < 5000 else 3, "t": str(T0 + timedelta(minutes=5 * k)),
                 "e": 1000.0 + k, "p": '{"BTC/USDT": 100.0}'} for k in range(10_000)]
        rows[4990:4990] = [{"s": 2, "t": str(T0), "e": 1.0, "p": "{}"}] * 300
        conn.execute(text("INSERT INTO equity_steps (session_id, created_at, equity, exposure, "
                          "prices) VALUES (:s, :t, :e, 0, :p)"), rows)
    with session_factory(engine)() as db:
        curve = equity_curve(db, [1, 3], 1000.0)
    engine.dispose()
    assert MAX_CURVE_POINTS * 0.9 < len(curve) <= MAX_CURVE_POINTS
    assert curve["equity"].iloc[0] == 1000.0 and curve["equity"].iloc[-1] == 10_999.0
    assert curve["time"].is_monotonic_increasing
    assert curve["equity"].diff().dropna().max() <= 10_300 // MAX_CURVE_POINTS + 2
