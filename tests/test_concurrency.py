"""The console reading at full speed while the bot writes as fast as it can.

A writer thread runs the real loop over a replay with no sleep; a reader thread, on its own
engine (as the console process has), hammers the console's read queries. No read may fail
with "database is locked", and no read may see data older than the last finished loop.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from bot.loop import run_iteration
from db import queries, queries_trading
from db.engine import make_engine, session_factory
from db.models import MarketData
from tests.conftest import candle_file
from tests.loop_harness import make_runtime
from tests.waiting import wait_for

SOAK_LOOPS, SOAK_READS = 100, 40  # both at once: the soak ends when both are reached


def soak(db_url: str, loops: int = SOAK_LOOPS, reads: int = SOAK_READS) -> dict[str, int]:
    """Run writer and reader together until the writer has finished ``loops`` loops and the
    reader ``reads`` reads; returns loops, reads, lock errors, stale reads."""
    rt = make_runtime(db_url, [candle_file("BTC_USDT-5m.csv")])
    done = threading.Event()
    state = {"loops": 0, "reads": 0, "locked": 0, "stale": 0, "errors": 0}

    def write() -> None:
        try:
            while not done.is_set():
                run_iteration(rt)
                state["loops"] += 1  # only after the loop's commits
                if not rt.venue.advance():
                    break
        finally:
            done.set()

    def read() -> None:
        factory = session_factory(make_engine(db_url))
        while not done.is_set():
            finished = state["loops"]
            try:
                with factory() as db:
                    seen = db.scalar(select(func.count()).select_from(MarketData)) or 0
                    info = queries.session_info(db)
                    if info is not None:
                        queries.overview_figures(db, info)
                        queries.recent_decisions(db, info.id)
                        queries.open_exposure(db, info.id)
                        queries_trading.open_orders(db, info.id)
                        queries_trading.traces(db, info.id)
                state["reads"] += 1
                if seen < finished:  # one snapshot row per finished loop (one symbol)
                    state["stale"] += 1
            except Exception as exc:
                state["locked" if "locked" in str(exc) else "errors"] += 1

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: done.is_set() or (state["loops"] >= loops and state["reads"] >= reads),
                 timeout=300)
    finally:
        done.set()
    for thread in threads:
        thread.join(120)
    return state


def check(state: dict[str, int]) -> None:
    assert state["loops"] >= SOAK_LOOPS and state["reads"] >= SOAK_READS, state
    assert state["locked"] == 0, state
    assert state["errors"] == 0, state
    assert state["stale"] == 0, state


@pytest.mark.slow
def test_sqlite_reader_never_locked_or_stale(sqlite_url) -> None:
    check(soak(sqlite_url))


def test_postgres_reader_never_locked_or_stale(postgres_url) -> None:
    check(soak(postgres_url))
