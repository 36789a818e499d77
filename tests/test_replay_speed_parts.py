"""The replay's fast paths give exactly what the slow, obvious code gives.

Speed came from three shortcuts: indicators without pandas-ta's per-call overhead, candles
kept in memory instead of re-read at every decision, and a prompt built from cached lines.
Each is held here to the code it replaced, so a faster replay cannot be a different one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from bot.engine import indicators
from bot.model.candles import CANDLE_COLUMNS
from db import decision_queries as q
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import OHLCV
from db.models import Session as TradingSession
from tests.conftest import candle_file


@pytest.mark.slow
@pytest.mark.parametrize("name", ["BTC_USDT-5m.csv", "ADA_BTC-5m.csv"])
def test_fast_indicators_equal_pandas_ta(name: str) -> None:
    """Bit for bit, except the bands (last-digit noise from pandas' rolling sums)."""
    candles = pd.read_csv(candle_file(name))
    for start in range(0, 2000, 97):
        for length in (1, 14, 15, 26, 33, 34, 35, 36, 60, 150):
            frame = candles.iloc[start:start + length].reset_index(drop=True)
            expected = indicators._arrays(frame, indicators.DEFAULT_PARAMS)
            got = indicators.fast_arrays(frame["close"].to_numpy(), frame["high"].to_numpy(),
                                         frame["low"].to_numpy())
            for column in indicators.COLUMNS:
                if column.startswith("bb_"):
                    np.testing.assert_allclose(got[column], expected[column], rtol=1e-12)
                else:
                    np.testing.assert_array_equal(got[column], expected[column],
                                                  err_msg=f"{column} {start}+{length}")


def _sql_closed_candles(db, session_id: int, symbol: str, timeframe: str, now: datetime,
                        limit: int) -> pd.DataFrame:
    """The query the cache replaced, as the definition of what it must return."""
    cutoff = now - q.timeframe_delta(timeframe)
    rows = db.execute(
        select(OHLCV.timestamp, OHLCV.open, OHLCV.high, OHLCV.low, OHLCV.close, OHLCV.volume)
        .where(OHLCV.session_id == session_id, OHLCV.symbol == symbol,
               OHLCV.timeframe == timeframe, OHLCV.timestamp <= cutoff)
        .order_by(OHLCV.timestamp.desc()).limit(limit)
    ).all()
    frame = pd.DataFrame([tuple(r) for r in reversed(rows)], columns=CANDLE_COLUMNS)
    if not frame.empty:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        for column in CANDLE_COLUMNS[1:]:
            frame[column] = frame[column].astype(float)
    return frame


@pytest.mark.slow
def test_cached_candles_equal_the_query_as_candles_arrive(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    engine = make_engine(url)
    start = datetime(2024, 3, 1, tzinfo=UTC)

    def add(db, session_id: int, symbol: str, tf: str, minutes: int, stamps: range) -> None:
        db.execute(insert(OHLCV), [
            {"session_id": session_id, "symbol": symbol, "timeframe": tf,
             "timestamp": start + timedelta(minutes=minutes * i), "open": i, "high": i + 1.5,
             "low": i - 0.5, "close": i + 0.25, "volume": i * 2.0} for i in stamps])

    with session_factory(engine)() as db:
        ids = []
        for day in (1, 2):  # two runs: a session of one reads no candles of the other
            session = TradingSession(date=date(2024, 3, day), run_name=f"run {day}",
                                     starting_balance=1.0)
            db.add(session)
            db.flush()
            ids.append(session.id)
        add(db, ids[0], "A/B", "5m", 5, range(20, 40))
        add(db, ids[0], "A/B", "5m", 5, range(0, 20))  # a backfill stored after newer rows
        db.commit()
        checked = 0
        for step in range(60):
            if step % 7 == 0:
                add(db, ids[0], "A/B", "5m", 5, range(40 + step, 47 + step))
                add(db, ids[0], "C/B", "1h", 60, range(step // 7, step // 7 + 1))
                add(db, ids[1], "A/B", "5m", 5, range(step, step + 3))
                db.commit()
            now = start + timedelta(minutes=5 * step, seconds=30)
            for session_id in ids:
                frames = q.candle_frames(db, session_id, ["A/B", "C/B"], ["5m", "1h"], now, 25)
                for symbol in ("A/B", "C/B"):
                    for tf in ("5m", "1h"):
                        expected = _sql_closed_candles(db, session_id, symbol, tf, now, 25)
                        got = frames[symbol][tf]
                        if expected.empty:
                            assert got.empty
                            continue
                        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
                        checked += 1
        assert checked > 50
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(f"sqlite:///{tmp_path / 'other.db'}")
    with session_factory(other)() as db:  # another database never sees these candles
        assert q.closed_candles(db, ids[0], "A/B", "5m", start + timedelta(days=9), 5).empty
    engine.dispose()
    other.dispose()
