"""The loop over a misbehaving venue: a real replay with faults injected by FaultyVenue.

What must hold whatever the venue does: the loop never crashes, the breaker trips and
recovers, ``audit`` is clean, every venue fill is booked exactly once. And faults that do
not change what the venue did (a fill listed twice, an order listed twice, a fill shown
seconds late, an error raised after an order was placed) must not change the fills at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.audit import audit
from bot.config import load_settings
from bot.engine.rules import RulesEngine
from bot.engine.schema import Action, ActionType, Decision
from bot.loop import run_iteration, start
from bot.runtime import Runtime
from bot.venue.faults import FaultRates, FaultyVenue, InjectedFault
from bot.venue.feeds import ReplayFeed
from bot.venue.paper import PaperVenue
from db.engine import make_engine, session_factory
from db.models import OpenOrder, Trade
from db.paper_store import PaperStore
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine

CANDLES = 800  # 200 of warm-up, then 600 loop iterations


@dataclass
class FaultRun:
    """What a replay over a faulty venue left behind."""

    rt: Runtime
    venue: FaultyVenue
    paper: PaperVenue
    iterations: int
    errors: int
    trips_seen_open: int
    fills_after_trip: int


def short_candles(tmp_path: Path, rows: int = CANDLES) -> Path:
    """The first ``rows`` candles of the shared BTC file, under the name the feed parses."""
    source = candle_file("BTC_USDT-5m.csv")
    target = tmp_path / "candles" / source.name
    target.parent.mkdir(exist_ok=True)
    with source.open() as handle:
        target.write_text("".join(line for _, line in zip(range(rows + 1), handle, strict=False)))
    return target


def faulty_runtime(db_url: str, candles: Path, rates: FaultRates, seed: int = 1,
                   engine=None, run_name: str = "faults") -> tuple[Runtime, FaultyVenue]:
    """tests/loop_harness.make_runtime with the paper venue behind a FaultyVenue."""
    feed = ReplayFeed([candles])
    settings = load_settings(DATABASE_URL=db_url, SYMBOLS=",".join(feed.symbols),
                             TIMEFRAMES="5m,1h", LOOP_INTERVAL_SECONDS=300)
    factory = session_factory(make_engine(db_url))
    paper = PaperVenue(feed, PaperStore(factory, run_name), starting_balance=settings.starting_balance)
    venue = FaultyVenue(paper, rates, seed)
    rt = Runtime(settings=settings, db=factory, venue=venue,
                 engine=engine or RulesEngine(settings), kind="replay", run_name=run_name)
    start(rt)
    return rt, venue


def replay(db_url: str, candles: Path, rates: FaultRates, seed: int = 1) -> FaultRun:
    """Step the loop to the end of the feed, tolerating (and counting) step errors."""
    rt, venue = faulty_runtime(db_url, candles, rates, seed)
    assert rt.breaker is not None
    iterations = errors = open_seen = 0
    first_open = None
    while True:
        run_iteration(rt)  # must never raise, whatever the venue does
        iterations += 1
        errors += len(rt.errors)
        if rt.breaker.is_open(rt.now()):
            open_seen += 1
            first_open = first_open or rt.now()
        if not venue.advance():
            break
    # The venue heals: a few clean iterations settle what the outage left (late fills).
    venue.release_all()
    for _ in range(3):
        run_iteration(rt)
        assert not rt.errors, rt.errors
    with rt.db() as db:
        fills_after_trip = db.scalar(select(func.count()).select_from(Trade).where(
            Trade.timestamp > first_open)) if first_open else 0
    return FaultRun(rt, venue, venue.inner, iterations, errors, open_seen, fills_after_trip or 0)


def booked(rt: Runtime) -> list[tuple]:
    with rt.db() as db:
        return [tuple(r) for r in db.execute(
            select(Trade.trade_id, Trade.timestamp, Trade.action, Trade.quantity, Trade.price,
                   Trade.fee).order_by(Trade.timestamp, Trade.trade_id))]


def assert_every_fill_once(run: FaultRun) -> None:
    """Each venue fill is booked, and none twice: nothing lost, nothing duplicated."""
    rows = booked(run.rt)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "a venue trade id was booked twice"
    assert set(ids) == {f.id for f in run.paper.fills}, "a venue fill was lost"
    with run.rt.db() as db:
        failed = [c for c in audit(db) if not c.ok]
    assert not failed, failed


@pytest.fixture
def candles(tmp_path: Path) -> Path:
    return short_candles(tmp_path)


@pytest.mark.slow
def test_twenty_percent_faults_loop_survives(sqlite_url, candles) -> None:
    run = replay(sqlite_url, candles, FaultRates.uniform(0.2, outage_calls=12), seed=3)
    injected = run.venue.injected
    assert run.iterations == CANDLES - 199
    assert run.errors > 0, "faults were injected but no step noticed"
    for kind in ("transient_before", "outage", "duplicate_fill", "late_fill", "reject"):
        assert injected[kind] > 0, (kind, injected)
    # The breaker tripped (entries paused) and recovered (it is shut again, trades resumed).
    assert run.rt.breaker is not None and run.rt.breaker.trips > 0
    assert 0 < run.trips_seen_open < run.iterations
    assert not run.rt.breaker.is_open(run.rt.now())
    assert run.fills_after_trip > 0
    assert_every_fill_once(run)


@pytest.mark.slow
def test_harmless_faults_leave_fills_unchanged(tmp_path, candles) -> None:
    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    faulty_url = f"sqlite:///{tmp_path / 'faulty.db'}"
    from db.migrate import upgrade

    upgrade(clean_url)
    upgrade(faulty_url)
    clean = replay(clean_url, candles, FaultRates(), seed=3)
    faulty = replay(faulty_url, candles, FaultRates.harmless(0.2), seed=3)
    injected = faulty.venue.injected
    # Late fills legitimately change the next decision (test_fills_shown_loops_late_...).
    for kind in ("transient_after", "duplicate_fill"):
        assert injected[kind] > 0, (kind, injected)
    assert clean.errors == 0
    assert len(booked(clean.rt)) > 10, "the fault-free run should trade"
    assert booked(faulty.rt) == booked(clean.rt)
    assert_every_fill_once(faulty)


@pytest.mark.slow
def test_fills_shown_loops_late_are_still_booked(sqlite_url, candles) -> None:
    """A fill hidden for several loops (older than fills booked meanwhile) is not lost."""
    rates = FaultRates(late_fill=0.5, late_calls=4, duplicate_fill=0.3)
    run = replay(sqlite_url, candles, rates, seed=5)
    assert run.venue.injected["late_fill"] > 3
    assert run.errors == 0
    assert_every_fill_once(run)


def test_order_listed_twice_is_one_open_order(sqlite_url, candles) -> None:
    """A resting limit order reported twice by the venue is snapshotted and journaled once."""
    far_below = Decision(actions=[Action(action=ActionType.BUY, symbol="BTC/USDT", size=0.01,
                                         order_type="limit", price=16000.0, stop=15500.0,
                                         target=17500.0, reason="resting limit")])
    rt, venue = faulty_runtime(sqlite_url, candles, FaultRates(double_open_order=1.0),
                               engine=ScriptedEngine([far_below]))
    for _ in range(4):
        run_iteration(rt)
        assert not rt.errors, rt.errors
        venue.advance()
    assert venue.injected["double_open_order"] >= 3
    with rt.db() as db:
        assert db.scalar(select(func.count()).select_from(OpenOrder)) == 1


def test_error_after_order_placed_is_not_a_second_order(sqlite_url, candles) -> None:
    """The order went through but the caller saw a timeout: the retry finds it placed."""
    rt, venue = faulty_runtime(
        sqlite_url, candles, FaultRates(transient_after=1.0),
        engine=ScriptedEngine([Decision(actions=[Action(
            action=ActionType.BUY, symbol="BTC/USDT", size=0.01, reason="entry")])]))
    run_iteration(rt)
    venue.release_all()
    venue.advance()
    run_iteration(rt)
    assert len(venue.inner.orders) == 1
    assert len(booked(rt)) == 1


def test_faults_are_deterministic_for_a_seed(sqlite_url, candles) -> None:
    def trace(seed: int) -> list[str]:
        rt, venue = faulty_runtime(sqlite_url, candles, FaultRates.uniform(0.3), seed,
                                   run_name=f"det{len(seen)}")
        out = []
        for _ in range(40):
            try:
                venue.fetch_ticker("BTC/USDT")
                out.append("ok")
            except InjectedFault as exc:
                out.append(str(exc))
        return out

    seen: list[list[str]] = []
    seen.append(trace(9))
    seen.append(trace(9))
    seen.append(trace(10))
    assert seen[0] == seen[1] != seen[2]


def test_outage_by_venue_clock(sqlite_url, candles) -> None:
    """An outage measured in venue minutes fails every call until the clock passes it."""
    rt, venue = faulty_runtime(sqlite_url, candles, FaultRates(outage=1.0, outage_seconds=900))
    with pytest.raises(InjectedFault):
        venue.fetch_ticker("BTC/USDT")
    venue.rates = FaultRates(outage_seconds=900)  # no new outage; the current one runs out
    for _ in range(2):
        venue.advance()
        with pytest.raises(InjectedFault):
            venue.fetch_balance()
    for _ in range(2):
        venue.advance()
    venue.fetch_ticker("BTC/USDT")
    assert venue.injected["outage"] == 1


def test_a_wrapped_paper_venue_waits_out_outages_with_the_runtime(sqlite_url, candles) -> None:
    """The runtime hands its outage waiter to its venue through the venue contract, so a
    paper venue behind a wrapper counts and backs off with the runtime's, as one alone does
    (its account is in the bot's database)."""
    rt, venue = faulty_runtime(sqlite_url, candles, FaultRates())
    assert isinstance(venue.inner, PaperVenue)
    assert venue.inner.outage is rt.outage


def test_parse_fault_spec() -> None:
    rates, seed = FaultRates.parse("uniform=0.2,late_calls=5,seed=4")
    assert seed == 4 and rates.late_calls == 5 and rates.transient_before == 0.2
    with pytest.raises(ValueError, match="bogus"):
        FaultRates.parse("bogus=1")
