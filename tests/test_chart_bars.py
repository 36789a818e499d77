"""A wide chart range is drawn as coarser bars rolled up in SQL: the bars and the fills per
bar must be what pandas makes of the raw rows, on SQLite and PostgreSQL.

The reference is a pandas resample of the stored 5m candles (the newest session's where a
candle was stored twice); the code under test reads the 1h candles where they are stored
and the 5m ones before and after them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import delete, insert

from db.chart_bars import (
    BAR_CAP,
    bar_candles,
    bar_fills,
    bar_start,
    holds_more_than,
    plans_closed_within,
    wide_bar,
)
from db.engine import make_engine, session_factory
from db.models import OHLCV, LLMTrace, Session, Trade, TradePlan

SYMBOL = "TST/USDT"
FIRST_DAY = datetime(2024, 3, 6, tzinfo=UTC)  # a Wednesday: the first week is cut
DAYS = 12
FIVE_MIN = timedelta(minutes=5)
HOURLY_FROM = FIRST_DAY + timedelta(days=2, hours=3)  # 1h stored from here ...
HOURLY_UNTIL = FIRST_DAY + timedelta(days=DAYS - 1, hours=20)  # ... to here (excluded)
RESTORED = 80  # the first day's last 5m candles, stored again (other values) by day two's
RULES = {"4h": "4h", "1d": "1D", "1w": "W-MON"}


def _walk(rng: random.Random, times: list[datetime], start: float) -> list[dict]:
    rows, price = [], start
    for when in times:
        close = price * (1 + rng.gauss(0, 0.003))
        rows.append({"timestamp": when, "open": price,
                     "high": max(price, close) * (1 + rng.random() * 0.002),
                     "low": min(price, close) * (1 - rng.random() * 0.002), "close": close,
                     "volume": rng.uniform(1, 50)})
        price = close
    return rows


def _day_session(db, day: int, run_name: str) -> int:
    """A new session of ``run_name`` for the ``day``-th day from ``FIRST_DAY``."""
    session = Session(date=(FIRST_DAY + timedelta(days=day)).date(), kind="live",
                      run_name=run_name, mode="PAPER", venue="paper", starting_balance=1_000.0)
    db.add(session)
    db.flush()
    return session.id


def _store(url: str) -> tuple[list[int], pd.DataFrame, list[dict]]:
    """A run of a session a day: its 5m candles, 1h ones rolled up from them over part of
    the run, a stretch of 5m stored twice, and fills. Returns the run's ids, the 5m candles
    as the chart must read them, and the fills."""
    rng = random.Random(5)
    engine = make_engine(url)
    with session_factory(engine)() as db:
        ids = [_day_session(db, day, "bars") for day in range(DAYS)]
        times = [FIRST_DAY + i * FIVE_MIN for i in range(DAYS * 288)]
        candles = _walk(rng, times, 100.0)
        stored = [{**row, "session_id": ids[i // 288], "timeframe": "5m"}
                  for i, row in enumerate(candles)]
        again = _walk(rng, times[288 - RESTORED:288], 101.0)
        stored += [{**row, "session_id": ids[1], "timeframe": "5m"} for row in again]
        truth = pd.DataFrame(candles[:288 - RESTORED] + again + candles[288:])
        truth["timestamp"] = pd.to_datetime(truth["timestamp"], utc=True)
        hourly = (truth.set_index("timestamp").resample("1h")
                  .agg({"open": "first", "high": "max", "low": "min", "close": "last",
                        "volume": "sum"}).reset_index())
        hourly = hourly[(hourly["timestamp"] >= HOURLY_FROM)
                        & (hourly["timestamp"] < HOURLY_UNTIL)]
        stored += [{**row, "timestamp": row["timestamp"].to_pydatetime(),
                    "session_id": ids[(row["timestamp"] - FIRST_DAY).days], "timeframe": "1h"}
                   for row in hourly.to_dict("records")]
        db.execute(insert(OHLCV), [{**row, "symbol": SYMBOL} for row in stored])
        traces = []
        for _ in range(7):
            trace = LLMTrace(session_id=ids[0], created_at=FIRST_DAY)
            db.add(trace)
            db.flush()
            traces.append(trace.id)
        fills = []
        for n in range(300):
            when = FIRST_DAY + timedelta(seconds=rng.uniform(0, DAYS * 86_400 - 1))
            fills.append({"session_id": ids[(when - FIRST_DAY).days], "timestamp": when,
                          "symbol": SYMBOL, "action": rng.choice(["BUY", "SELL"]),
                          "quantity": rng.uniform(0.1, 2), "price": rng.uniform(90, 110),
                          "fee": rng.uniform(0, 0.1), "realized_pnl": rng.gauss(0, 1),
                          "venue": "paper", "trade_id": f"T{n}",
                          "trace_id": traces[n % 7] if n % 5 else None})
        db.execute(insert(Trade), fills)  # ids in list order: the list is the booking order
        db.commit()
    engine.dispose()
    return ids, truth, fills


@pytest.fixture
def stored(db_url: str):
    ids, truth, fills = _store(db_url)
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        yield db, ids, truth, fills
    engine.dispose()


def _reference(truth: pd.DataFrame, bar: str, start: datetime, end: datetime) -> pd.DataFrame:
    rows = truth[(truth["timestamp"] >= bar_start(start, bar)) & (truth["timestamp"] < end)]
    out = (rows.set_index("timestamp")
           .resample(RULES[bar], label="left", closed="left")
           .agg({"open": "first", "high": "max", "low": "min", "close": "last",
                 "volume": "sum"}).dropna().reset_index())
    return out


def _assert_same_bars(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert [t.isoformat() for t in got["timestamp"]] == [
        t.isoformat() for t in want["timestamp"]]
    for column in ("open", "high", "low", "close", "volume"):
        assert got[column].tolist() == pytest.approx(want[column].tolist(), rel=1e-12), column


@pytest.mark.parametrize("bar", ["4h", "1d", "1w"])
@pytest.mark.parametrize("source", ["1h", "5m"])
def test_bars_are_the_resampled_candles(stored, bar, source):
    """Whichever stored timeframe the bars come from, they are the 5m candles resampled:
    over the 1h ones, the 5m ones before and after them, and the twice-stored stretch."""
    db, ids, truth, _ = stored
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=DAYS)
    frame, first = bar_candles(db, ids, SYMBOL, "5m", bar, source, start=start, end=end)
    want = _reference(truth, bar, start, end)
    assert first == want["timestamp"].iloc[0].to_pydatetime()
    _assert_same_bars(frame, want)


@pytest.mark.parametrize("bar", ["4h", "1d", "1w"])
def test_days_the_source_was_not_stored_are_rolled_up_from_the_candles(stored, bar):
    """A run that stopped storing 1h candles for two days (its timeframes changed, then
    changed back) draws those days from its 5m candles, not as a hole."""
    db, ids, truth, _ = stored
    db.execute(delete(OHLCV).where(OHLCV.session_id.in_(ids[5:7]), OHLCV.timeframe == "1h"))
    db.flush()
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=DAYS)
    frame, _ = bar_candles(db, ids, SYMBOL, "5m", bar, "1h", start=start, end=end)
    _assert_same_bars(frame, _reference(truth, bar, start, end))


def test_a_source_missing_the_hour_at_each_days_start_is_read_whole(db_url):
    """A year of an illiquid pair whose exchange has no 1h candle (and no 5m one) for the
    first hour of each day: the bars are the 1h candles' days, read in a few stretches
    (one a session's edge ran past SQLite's 500 compound SELECTs)."""
    rng = random.Random(11)
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids, rows = [], []
        for day in range(260):
            ids.append(_day_session(db, day, "thin"))
            hours = [FIRST_DAY + timedelta(days=day, hours=h) for h in range(1, 24)]
            rows += [{**row, "session_id": ids[-1], "symbol": SYMBOL, "timeframe": "1h"}
                     for row in _walk(rng, hours, 100.0)]
        db.execute(insert(OHLCV), rows)
        db.flush()
        start, end = FIRST_DAY, FIRST_DAY + timedelta(days=260)
        frame, _ = bar_candles(db, ids, SYMBOL, "5m", "1d", "1h", start=start, end=end)
        hourly = pd.DataFrame(rows).assign(
            timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))
        _assert_same_bars(frame, _reference(hourly, "1d", start, end))
    engine.dispose()


def test_a_candle_the_newest_session_stores_is_in_the_next_read(stored):
    """The closed sessions' share of the bars is kept between reads; the newest session's,
    where the bot writes, is read each time."""
    db, ids, truth, _ = stored
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=DAYS + 1)
    before, _ = bar_candles(db, ids, SYMBOL, "5m", "1d", "1h", start=start, end=end)
    _assert_same_bars(before, _reference(truth, "1d", start, end))
    later = _walk(random.Random(9), [end - timedelta(days=1) + n * FIVE_MIN
                                     for n in range(30)], 120.0)
    db.execute(insert(OHLCV), [{**row, "session_id": ids[-1], "symbol": SYMBOL,
                                "timeframe": "5m"} for row in later])
    db.flush()
    grown = pd.concat([truth, pd.DataFrame(later).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))], ignore_index=True)
    after, _ = bar_candles(db, ids, SYMBOL, "5m", "1d", "1h", start=start, end=end)
    assert len(after) == len(before) + 1
    _assert_same_bars(after, _reference(grown, "1d", start, end))


def test_a_cut_range_keeps_its_warmup_bars_before_the_first_shown(stored):
    db, ids, truth, _ = stored
    start, end = FIRST_DAY + timedelta(days=5), FIRST_DAY + timedelta(days=9)
    frame, first = bar_candles(db, ids, SYMBOL, "5m", "4h", "1h", start=start, end=end,
                               warmup=10)
    assert first == start
    assert (frame["timestamp"] < start).sum() == 10
    _assert_same_bars(frame, _reference(truth, "4h", start - timedelta(hours=40), end))


@pytest.mark.parametrize("bar", ["4h", "1d", "1w"])
def test_fills_per_bar_add_up_to_the_raw_fills(stored, bar):
    db, ids, _, fills = stored
    start, end = FIRST_DAY + timedelta(days=1), FIRST_DAY + timedelta(days=DAYS)
    got = bar_fills(db, ids, SYMBOL, bar, start, end)
    raw = pd.DataFrame(fills)
    raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True)
    raw = raw[(raw["timestamp"] >= start) & (raw["timestamp"] < end)].assign(
        notional=lambda f: f["quantity"] * f["price"])
    raw["bar"] = raw["timestamp"].map(lambda t: bar_start(t.to_pydatetime(), bar))
    want = raw.groupby(["bar", "action"]).agg(
        fills=("price", "size"), quantity=("quantity", "sum"), notional=("notional", "sum"),
        fee=("fee", "sum"), realized_pnl=("realized_pnl", "sum")).reset_index()
    assert [(t.to_pydatetime(), a) for t, a in zip(got["timestamp"], got["action"],
                                                   strict=True)] == list(
        zip(want["bar"], want["action"], strict=True))
    assert got["fills"].tolist() == want["fills"].tolist()
    assert got["fills"].sum() == len(raw)
    for column in ("quantity", "fee", "realized_pnl"):
        assert got[column].tolist() == pytest.approx(want[column].tolist(), rel=1e-9)
    assert got["price"].tolist() == pytest.approx(
        (want["notional"] / want["quantity"]).tolist(), rel=1e-9)


@pytest.mark.parametrize("bar", ["4h", "1w"])
def test_a_bars_marker_opens_its_last_fills_decision(stored, bar):
    """A click on a bar's marker opens the decision of the bar's last-booked fill of that
    side (none when that fill has no decision)."""
    db, ids, _, fills = stored
    got = bar_fills(db, ids, SYMBOL, bar, FIRST_DAY, FIRST_DAY + timedelta(days=DAYS))
    last: dict[tuple, int | None] = {}
    for fill in fills:  # booked in this order
        last[(bar_start(fill["timestamp"], bar), fill["action"])] = fill["trace_id"]
    assert {(t.to_pydatetime(), a): (None if pd.isna(trace) else int(trace))
            for t, a, trace in zip(got["timestamp"], got["action"], got["trace_id"],
                                   strict=True)} == last


def test_a_range_is_drawn_whole_at_the_shortest_bar_that_fits():
    year = timedelta(days=366)
    assert wide_bar("5m", ["5m", "1h"], year) == ("1d", "1h")
    assert wide_bar("5m", ["5m", "15m", "1h"], timedelta(days=5)) == ("15m", "15m")
    assert wide_bar("5m", ["5m"], timedelta(days=5)) == ("15m", "5m")
    assert wide_bar("5m", ["5m", "1h"], timedelta(days=30)) == ("1h", "1h")
    assert wide_bar("1m", ["1m", "5m", "1h"], timedelta(days=20)) == ("30m", "5m")
    assert wide_bar("1h", ["1h", "1d"], 2 * year) == ("1d", "1d")
    assert wide_bar("1h", ["1h", "1d"], 3 * year) == ("1w", "1d")
    assert wide_bar("5m", ["5m", "1h"], 30 * year) == ("1w", "1h")  # none fits: the longest
    assert wide_bar("1w", ["1w"], 30 * year) is None
    for timeframe, span in (("5m", year), ("1m", timedelta(days=3)), ("1h", 2 * year)):
        bar = wide_bar(timeframe, [timeframe], span)
        assert bar is not None
        assert span / timedelta(seconds=pd.Timedelta(bar[0]).total_seconds()) <= BAR_CAP


def test_weeks_start_on_monday_and_days_at_midnight():
    wednesday = datetime(2024, 3, 6, 15, 30, tzinfo=UTC)
    assert bar_start(wednesday, "1w") == datetime(2024, 3, 4, tzinfo=UTC)
    assert bar_start(wednesday, "1d") == datetime(2024, 3, 6, tzinfo=UTC)
    assert bar_start(wednesday, "4h") == datetime(2024, 3, 6, 12, tzinfo=UTC)


def test_counting_candles_and_closed_plans(stored):
    db, ids, _, _ = stored
    day = FIRST_DAY + timedelta(days=4)
    assert holds_more_than(db, ids, SYMBOL, "5m", day, day + timedelta(days=1), 287)
    assert not holds_more_than(db, ids, SYMBOL, "5m", day, day + timedelta(days=1), 288)
    for n, closed in enumerate((day, day + timedelta(hours=5), None)):
        db.add(TradePlan(session_id=ids[4], symbol=SYMBOL, side="BUY", status=(
            "open" if closed is None else "closed"), entry_price=100.0, stop_price=95.0,
            target_price=110.0, size=1.0, opened_at=day - timedelta(hours=n),
            closed_at=closed))
    db.flush()
    assert plans_closed_within(db, ids, SYMBOL, day, day + timedelta(days=1)) == 2
    assert plans_closed_within(db, ids, SYMBOL, day + timedelta(hours=1),
                               day + timedelta(days=1)) == 1
