"""A run stores each candle once: a new day's session goes on from the run's newest candle
(its previous session's) instead of storing the warm-up again, and its decisions still see
the candles they saw when it did.

The candles a decision should see are built here from the candle files themselves (the
newest closed ones before its clock), not by the code under test.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bot.decision_context import CONTEXT_CANDLES
from bot.steps.market_data import FIRST_FETCH_CANDLES
from db import decision_queries as q
from db.engine import make_engine, session_factory
from db.models import OHLCV, Session
from db.queries_chart import chart_choices
from db.retention import prune
from tests.crafted import FIVE_MIN_MS, WARMUP, write_path
from tests.loop_harness import ScriptedEngine, make_runtime, step

SYMBOL = "TST/USDT"
HOUR_MS = 12 * FIVE_MIN_MS
MIDNIGHT = datetime(2023, 11, 15, tzinfo=UTC)
MIDNIGHT_MS = int(MIDNIGHT.timestamp() * 1000)


def _closes(count: int) -> list[float]:
    """A wandering price, so that no two candles look alike."""
    return [100.0 + 5 * math.sin(i / 7) + i * 0.01 for i in range(count)]


def _file_rows(*paths: Path) -> dict[int, tuple[float, ...]]:
    """timestamp (ms) → (open, high, low, close, volume) of the files' rows."""
    rows: dict[int, tuple[float, ...]] = {}
    for path in paths:
        with path.open() as handle:
            for row in csv.DictReader(handle):
                rows[int(row["timestamp"])] = tuple(
                    float(row[c]) for c in ("open", "high", "low", "close", "volume"))
    return rows


def _expected(rows: dict[int, tuple[float, ...]], now: datetime,
              timeframe_ms: int) -> list[tuple]:
    """The newest CONTEXT_CANDLES candles of ``timeframe_ms`` closed by ``now``, aggregated
    from the 5m rows closed by then (whole buckets only)."""
    now_ms = int(now.timestamp() * 1000)
    buckets: dict[int, list[tuple[int, tuple[float, ...]]]] = {}
    for ts in sorted(rows):
        if ts + FIVE_MIN_MS <= now_ms:
            buckets.setdefault(ts - ts % timeframe_ms, []).append((ts, rows[ts]))
    candles = []
    for start, members in sorted(buckets.items()):
        if start + timeframe_ms > now_ms or len(members) != timeframe_ms // FIVE_MIN_MS:
            continue
        values = [v for _, v in members]
        candles.append((start, values[0][0], max(v[1] for v in values),
                        min(v[2] for v in values), values[-1][3], sum(v[4] for v in values)))
    return candles[-CONTEXT_CANDLES:]


def _seen(context, timeframe: str) -> list[tuple]:
    frame = context.markets[SYMBOL].candles[timeframe]
    return [(int(row.timestamp.timestamp() * 1000), row.open, row.high, row.low, row.close,
             row.volume) for row in frame.itertuples()]


def _assert_same_candles(seen: list[tuple], expected: list[tuple]) -> None:
    assert [row[0] for row in seen] == [row[0] for row in expected]
    for got, want in zip(seen, expected, strict=True):
        assert got[1:] == pytest.approx(want[1:], rel=1e-12), got[0]


def _stored_twice(rt) -> list:
    with rt.db() as db:
        return db.execute(
            select(OHLCV.symbol, OHLCV.timeframe, OHLCV.timestamp)
            .group_by(OHLCV.symbol, OHLCV.timeframe, OHLCV.timestamp)
            .having(func.count() > 1)).all()


def _stored_per_session(rt, timeframe: str) -> list[int]:
    with rt.db() as db:
        return list(db.scalars(
            select(func.count()).select_from(OHLCV).join(Session, Session.id == OHLCV.session_id)
            .where(OHLCV.timeframe == timeframe).group_by(Session.date).order_by(Session.date)))


@pytest.mark.parametrize("kind", ["replay", "live"])
@pytest.mark.parametrize("restart", [False, True], ids=["one-process", "restarted-after-midnight"])
def test_a_run_over_a_day_boundary_stores_each_candle_once_and_decides_on_the_same_candles(
        db_url, tmp_path, kind, restart):
    """Hour-aligned so that the 1h buckets are whole: the run's first step is 4 steps
    before midnight; the next day's session stores only the candles after the run's
    newest, and its decisions see the newest CONTEXT_CANDLES closed candles of each
    timeframe, as they did when every day stored its warm-up again."""
    start_ms = MIDNIGHT_MS - (WARMUP + 4) * FIVE_MIN_MS
    assert start_ms % HOUR_MS == 0
    path = write_path(tmp_path / "TST_USDT-5m.csv", _closes(WARMUP + 40), start_ms=start_ms)
    engine = ScriptedEngine([])
    rt = make_runtime(db_url, [path], engine, kind=kind, run_name="candles")
    if restart:
        step(rt, 6)  # 23:40 … 00:05: the new day has stored its first candles
        engine = ScriptedEngine([])
        rt = make_runtime(db_url, [path], engine, kind=kind, run_name="candles")
        step(rt, 20)
    else:
        step(rt, 26)
    assert _stored_twice(rt) == []
    first_day, second_day = _stored_per_session(rt, "5m")
    assert first_day == WARMUP + 3  # the warm-up, then one a step to 23:55
    assert second_day == 26 - 4  # one a step from 00:00 on: never the warm-up again
    rows = _file_rows(path)
    after_midnight = [c for c in engine.contexts if c.now >= MIDNIGHT]
    assert after_midnight
    for context in after_midnight:
        _assert_same_candles(_seen(context, "5m"), _expected(rows, context.now, FIVE_MIN_MS))
        _assert_same_candles(_seen(context, "1h"), _expected(rows, context.now, HOUR_MS))


EXCHANGE_DEFAULT_LIMIT = 100  # candles OKX answers a request naming no limit with


@pytest.mark.parametrize(("gap", "whole"), [(24, False), (144, False), (3 * 288, True)],
                         ids=["two-hours-later", "twelve-hours-later", "three-days-later"])
def test_a_bot_restarted_after_a_gap_longer_than_the_warm_up_fetches_it_whole(
        sqlite_url, tmp_path, gap, whole):
    """A live bot stops at 23:00 and starts again ``gap`` candles later, on another day. Hours
    later it goes on from its newest candle, asking for every candle it missed (an exchange
    answers a request naming no limit with its default: OKX's 100, fewer than twelve hours
    of 5m candles); days later (more candles missed than the warm-up) it fetches the warm-up
    whole, as a run's first session does. Either way its decisions see the newest closed
    candles."""
    closes = _closes(WARMUP + 3 + gap + 5)
    first_ms = MIDNIGHT_MS - HOUR_MS - (WARMUP + 2) * FIVE_MIN_MS  # its last step is 23:00
    (tmp_path / "before").mkdir()
    before = write_path(tmp_path / "before" / "TST_USDT-5m.csv", closes[: WARMUP + 2],
                        start_ms=first_ms)
    rt = make_runtime(sqlite_url, [before], ScriptedEngine([]), kind="live", run_name="bot")
    step(rt, 3)  # 22:50, 22:55, 23:00
    assert rt.now() == MIDNIGHT - timedelta(hours=1)  # its file ends there
    tip_ms = first_ms + (WARMUP + 1) * FIVE_MIN_MS
    # the file of the restart: its warm-up ends ``gap`` candles after the bot stopped
    skip = WARMUP + 2 + gap - WARMUP
    after = write_path(tmp_path / "TST_USDT-5m.csv", closes[skip:],
                       start_ms=first_ms + skip * FIVE_MIN_MS, opens={0: closes[skip - 1]})
    engine = ScriptedEngine([])
    rt = make_runtime(sqlite_url, [after], engine, kind="live", run_name="bot", account="later")
    fetches: list[tuple] = []
    fetch = rt.venue.fetch_ohlcv

    def spied(symbol, timeframe="5m", since=None, limit=None):
        """The venue answering as an exchange does: from ``since`` on, at most ``limit``
        candles, or its default when none is named."""
        fetches.append((timeframe, since, limit))
        rows = fetch(symbol, timeframe, since, None if since is not None else limit)
        return rows if since is None else rows[:limit or EXCHANGE_DEFAULT_LIMIT]

    rt.venue.fetch_ohlcv = spied  # type: ignore[method-assign]
    step(rt, 3)
    assert rt.now() > MIDNIGHT
    first_fetch = next(f for f in fetches if f[0] == "5m")
    assert first_fetch[1:] == ((None, FIRST_FETCH_CANDLES) if whole else (tip_ms + 1, gap + 2))
    assert _stored_twice(rt) == []
    assert _stored_per_session(rt, "5m") == [WARMUP + 2, WARMUP + 2 if whole else gap + 2]
    rows = _file_rows(before, after)
    for context in engine.contexts:
        _assert_same_candles(_seen(context, "5m"), _expected(rows, context.now, FIVE_MIN_MS))


def test_a_run_stored_before_this_reads_each_candle_once(sqlite_url):
    """A database of a run whose every day stored its warm-up again: the next day's
    decision reads each candle once, the previous day's history before its own."""
    start = MIDNIGHT - timedelta(minutes=5 * 30)  # the candles are numbered from here
    factory = session_factory(make_engine(sqlite_url))

    def candles(session_id: int, stamps: range) -> list[dict]:
        return [{"session_id": session_id, "symbol": SYMBOL, "timeframe": "5m",
                 "timestamp": start + timedelta(minutes=5 * i), "open": i, "high": i + 1,
                 "low": i - 1, "close": i + 0.5, "volume": 1.0} for i in stamps]

    with factory() as db:
        days = [Session(date=MIDNIGHT.date() - timedelta(days=back), kind="live",
                        run_name="old", starting_balance=1.0) for back in (2, 1, 0)]
        db.add_all(days)
        db.flush()
        db.execute(insert(OHLCV), candles(days[0].id, range(0, 30)))
        db.execute(insert(OHLCV), candles(days[1].id, range(10, 35)))  # its warm-up again
        db.execute(insert(OHLCV), candles(days[2].id, range(25, 40)))
        db.commit()
        now = start + timedelta(minutes=5 * 40)
        frame = q.candle_frames(db, days[2].id, [SYMBOL], ["5m"], now, 38)[SYMBOL]["5m"]
    assert list(frame["open"]) == [float(i) for i in range(2, 40)]


def test_the_chart_offers_a_timeframe_the_newest_session_has_not_stored_yet(sqlite_url):
    """A day's session stores a 1d candle only once one closes during it: the chart still
    offers the run's 1d candles while the newest session holds none."""
    factory = session_factory(make_engine(sqlite_url))
    with factory() as db:
        days = [Session(date=MIDNIGHT.date() - timedelta(days=back), kind="live",
                        run_name="chart", starting_balance=1.0) for back in (1, 0)]
        db.add_all(days)
        db.flush()
        rows = [(days[0].id, "1d", MIDNIGHT - timedelta(days=1)),
                (days[0].id, "5m", MIDNIGHT - timedelta(minutes=5)), (days[1].id, "5m", MIDNIGHT)]
        db.execute(insert(OHLCV), [
            {"session_id": session_id, "symbol": SYMBOL, "timeframe": timeframe,
             "timestamp": when, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}
            for session_id, timeframe, when in rows])
        db.commit()
        assert chart_choices(db, [day.id for day in days]) == {SYMBOL: ["5m", "1d"]}


def test_thinning_the_old_days_keeps_the_candles_a_later_day_reads(sqlite_url, tmp_path):
    """The day before holds the warm-up of the next day's decisions and replay-live: the
    retention prune thins its ticks (and its scored traces), never its candles. The open day
    is not rolled up, so nothing of it is thinned."""
    start_ms = MIDNIGHT_MS - (WARMUP + 4) * FIVE_MIN_MS
    path = write_path(tmp_path / "TST_USDT-5m.csv", _closes(WARMUP + 12), start_ms=start_ms)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), kind="live", run_name="kept")
    step(rt, 8)
    stored = _stored_per_session(rt, "5m")
    with rt.db() as db:
        pruned = prune(db, MIDNIGHT.date() + timedelta(days=1))
    assert pruned.sessions == 1 and pruned.market_data > 0
    assert _stored_per_session(rt, "5m") == stored == [WARMUP + 3, 4]


def test_a_series_closing_less_often_than_a_day_keeps_its_history_across_restarts(
        sqlite_url, tmp_path):
    """A 2d candle closes every other day, so every other session stores none of it: a
    runtime started again (a resumed replay, a restarted bot) still sees the series' newest
    candles, those the file gives by then, and stores none of them twice."""
    days = 2 * 24 * HOUR_MS
    warmup = 8 * 288  # from a 2d boundary: whole buckets only
    start_ms = MIDNIGHT_MS - warmup * FIVE_MIN_MS
    path = write_path(tmp_path / "TST_USDT-5m.csv", _closes(warmup + 800), start_ms=start_ms)
    rows = _file_rows(path)
    engine = ScriptedEngine([])

    def started():
        return make_runtime(sqlite_url, [path], engine, kind="replay", run_name="sparse",
                            warmup=warmup, TIMEFRAMES="5m,2d")

    rt = started()
    for k in range(700):  # the third day restarts after a day that stored none
        if k and k % 100 == 0:
            rt = started()
        step(rt)
        context = engine.contexts[-1]
        expected = _expected(rows, context.now, days)
        assert len(expected) >= 3
        _assert_same_candles(_seen(context, "2d"), expected)
    assert _stored_twice(rt) == []
