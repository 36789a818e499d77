"""A day's session stores the candles its decisions and the chart read, and no more: every
day stores its first fetch again, so the fetch's size is most of a year's candle bytes."""

from __future__ import annotations

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
