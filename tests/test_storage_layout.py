"""How rows take bytes: a day's session stores the candles its decisions and the chart read,
and no more (every day stores its first fetch again, so the fetch's size is most of a year's
candle bytes); a new SQLite file packs rows in pages large enough for a prompt's blob."""

from __future__ import annotations

import sqlite3

from sqlalchemy import func, select

from bot.steps.market_data import FIRST_FETCH_CANDLES
from db.migrate import upgrade
from db.models import OHLCV
from tests.loop_harness import make_runtime, step
from tests.test_replay import write_candles


def test_a_sessions_first_fetch_stores_the_decision_window_and_the_charts_warmup(
        tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    candles = write_candles(tmp_path / "BTC_USDT-5m.csv",
                            [20_000.0 + (i % 50) for i in range(12_000)])
    rt = make_runtime(url, [candles])
    feed = rt.venue.feed
    feed.seek(int(feed._steps[10_000]) + feed._base_ms)  # weeks of 5m and 1h candles before
    step(rt, 2)
    with rt.db() as db:
        stored = dict(db.execute(select(OHLCV.timeframe, func.count())
                                 .group_by(OHLCV.timeframe)).all())
    assert FIRST_FETCH_CANDLES == 201  # 150 decided on, 200 for the chart, 1 still forming
    assert stored == {"5m": FIRST_FETCH_CANDLES + 1, "1h": FIRST_FETCH_CANDLES}


def test_a_new_sqlite_database_packs_rows_in_8_kib_pages(tmp_path) -> None:
    """A prompt's blob (~1.4 kB compressed) took a 4 kB page for two; 8 kB pages hold five.
    A database made before keeps its page size (SQLite changes it only by a VACUUM)."""
    new = tmp_path / "new.db"
    upgrade(f"sqlite:///{new}")
    with sqlite3.connect(new) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (8192,)
    with sqlite3.connect(new) as conn:  # as a database made before: 4 kB pages
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=4096")
        conn.execute("VACUUM")
    upgrade(f"sqlite:///{new}")
    with sqlite3.connect(new) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
