"""Clock jumps (issue 16 §1): the system clock set days ahead for a few seconds opens no
session ahead, moves no market ahead, and is named on the heartbeat while it lasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.clock import SteadyClock
from bot.config import load_settings
from bot.engine.rules import RulesEngine
from bot.loop import heartbeat, run_iteration, start
from bot.runtime import Runtime
from bot.venue.feeds import SyntheticFeed
from bot.venue.paper import PaperVenue
from db.engine import make_engine, session_factory
from db.models import BotStatus, Session
from db.paper_store import PaperStore

TWO_DAYS = 2 * 86_400.0
T0 = 1_790_000_000.0 + 1_234.567  # seconds; any minute of any hour


class FakeTime:
    """A system clock and a monotonic clock that tests move apart at will."""

    def __init__(self) -> None:
        self.wall, self.mono = T0, 1_000.0

    def pass_(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def clock(self) -> SteadyClock:
        return SteadyClock(wall=lambda: self.wall, monotonic=lambda: self.mono)


def test_the_steady_clock_follows_the_system_clock_but_not_its_jumps() -> None:
    time = FakeTime()
    clock = time.clock()
    assert clock() == int(T0 * 1000) and clock.jump_note() is None
    time.pass_(10)
    time.wall += 0.5  # an NTP correction is followed
    assert clock() == int((T0 + 10.5) * 1000) and clock.jump_note() is None
    time.wall += TWO_DAYS
    time.pass_(25)
    assert clock() == int((T0 + 35.5) * 1000)
    assert clock.jump_note() is not None and "+2d 0h 0m" in clock.jump_note()
    time.wall -= TWO_DAYS
    time.pass_(10)
    assert clock() == int((T0 + 45.5) * 1000) and clock.jump_note() is None
    time.wall -= 3600  # set back an hour: time does not run backwards either
    time.pass_(10)
    assert clock() == int((T0 + 55.5) * 1000) and "-1h" in (clock.jump_note() or "")


def _bot(url: str, time: FakeTime) -> Runtime:
    settings = load_settings(DATABASE_URL=url, SESSION_TIMEZONE="UTC")
    factory = session_factory(make_engine(url))
    feed = SyntheticFeed(settings.symbols, seed=settings.feed_seed, clock=time.clock())
    rt = Runtime(settings=settings, db=factory, venue=PaperVenue(feed, PaperStore(factory, "default")),
                 engine=RulesEngine(settings))
    start(rt)
    return rt


def _step(rt: Runtime, time: FakeTime) -> None:
    """Ten seconds' sleep, the market's step, then an iteration, as the loop does."""
    time.pass_(10)
    rt.venue.advance()
    run_iteration(rt)
    heartbeat(rt)


def _last_error(rt: Runtime) -> str:
    with rt.db() as db:
        return db.scalars(select(BotStatus.last_error)).one() or ""


def test_a_jump_of_the_system_clock_opens_no_session_ahead_and_is_named(sqlite_url) -> None:
    time = FakeTime()
    rt = _bot(sqlite_url, time)
    for _ in range(3):
        _step(rt, time)
    time.wall += TWO_DAYS  # +2 days for 25 s, then back
    for _ in range(3):
        _step(rt, time)
        assert "system clock jumped +2d" in _last_error(rt)
    time.wall -= TWO_DAYS
    for _ in range(2):
        _step(rt, time)
    assert "clock" not in _last_error(rt)
    elapsed = 8 * 10  # seconds the bot ran
    assert rt.now() <= datetime.fromtimestamp(T0 + elapsed + 1, UTC)
    with rt.db() as db:
        days = set(db.scalars(select(Session.date)))
    assert days == {datetime.fromtimestamp(T0, UTC).date()}


def test_a_market_stored_ahead_of_the_clock_runs_on_and_says_so(sqlite_url) -> None:
    """A store written while the clock was days ahead does not freeze the market until the
    clock catches up: it runs on from where it was stored, and the lead is named."""
    time = FakeTime()
    time.wall += TWO_DAYS
    rt = _bot(sqlite_url, time)  # the market's clock is stored two days ahead
    for _ in range(2):
        _step(rt, time)
    ahead = rt.now()
    time.wall -= TWO_DAYS  # the system clock is right again; the bot restarts
    rt = _bot(sqlite_url, time)
    assert rt.now() >= ahead
    before = rt.now()
    _step(rt, time)
    _step(rt, time)
    assert rt.now() - before >= timedelta(seconds=20)
    assert "ahead of the system clock" in _last_error(rt)
