"""Replay: the live loop over recorded candles on the paper venue with a simulated clock.

Nothing here is a second trading path: it assembles the same Runtime the live bot uses,
with a ReplayFeed under the paper venue, and runs it with the live bot's driver on a
simulated clock, candle by candle. The run's identity is a hash of its inputs, so the same
command against the same database resumes a killed replay where it stopped, and prints a
finished one's summary again.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import ConfigError, Settings, load_settings
from bot.engine.base import DecisionEngine
from bot.engine.factory import build_engine, build_shadow
from bot.engine.prompt import PROMPT_VERSION
from bot.engine.recording import Recording
from bot.lock import BotLock
from bot.loop import Ended, drive
from bot.model.market_size import balance_warnings
from bot.rollups import roll_up, roll_up_scores
from bot.run_settings import flag_named, option_origins, settings_hash, settings_record
from bot.runtime import Runtime
from bot.steps.fill_sync import sync_fills
from bot.venue.feeds import FeedError, ReplayFeed, timeframe_ms
from bot.venue.paper import PaperVenue
from db.bots import register_replay
from db.contamination import run_contamination
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.paper_store import PaperStore
from db.queries_replays import finished_record, run_summary
from db.replay_runs import mark_finished, run_finished_at

HOUR_MS = 3_600_000
# the money caps a replay scales to its balance, as shares of it (unless set otherwise)
CAPS_SCALED = {"MIN_NOTIONAL": 0.001, "MAX_ORDER_VALUE": 0.1, "MAX_TOTAL_EXPOSURE": 0.5,
               "MAX_DAILY_LOSS": 0.05}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayArgs:
    candles: list[Path]
    db_url: str
    engine: str = "rules"
    start: datetime | None = None
    end: datetime | None = None
    balance: float = 10_000.0
    recording: Path | None = None  # LLM answers: served from here, new ones appended
    record: bool = False  # ask the API every time, appending to ``recording``
    # settings by their environment name (fees, risk caps, entry size...): they win over
    # the environment and over the caps scaled to the balance
    overrides: Mapping[str, object] = field(default_factory=dict)

    def run_name(self, settings_hash: str) -> str:
        """The files' names and contents and the hash of the run's recorded settings (engine,
        dates, balance, fees, caps...): a run with other settings, or a file corrected in
        place to the same size, is another run, never resumed or summarized as this."""
        digest = hashlib.sha256()
        for path in self.candles:
            with path.open("rb") as candles:
                content = hashlib.file_digest(candles, "sha256").hexdigest()
            digest.update(f"{path.name}:{content}".encode())
        digest.update(settings_hash.encode())
        return "replay-" + digest.hexdigest()[:10]

    def recorded_settings(self, settings: Settings) -> dict[str, Any]:
        """What the run records it traded with: the settings, its files and its dates."""
        return settings_record(
            settings, prompt_version=PROMPT_VERSION,
            feed="replay:" + ",".join(path.name for path in self.candles),
            start=self.start.isoformat() if self.start else None,
            end=self.end.isoformat() if self.end else None)


def replay_settings(args: ReplayArgs, feed: ReplayFeed) -> Settings:
    """Settings for a replay: symbols from the files, money caps scaled to the balance.

    Caps are in quote currency; a BTC-quoted replay with a balance of 1 needs caps in BTC.
    Anything set in the environment wins over the scaled caps, and the run's own
    ``overrides`` over both. What the user gave is checked before the caps are scaled from
    it, so a bad balance is said once, by its flag, not as caps they never set; a bad one
    is named with its flag, and a scaled cap with the balance it came from.
    """
    import os

    base = feed.base_timeframe
    timeframes = [base] + (["1h"] if timeframe_ms(base) < HOUR_MS else [])
    given = {
        "DATABASE_URL": args.db_url, "SYMBOLS": ",".join(feed.symbols),
        "TIMEFRAMES": ",".join(timeframes), "STARTING_BALANCE": args.balance,
        "LLM_PROVIDER": args.engine, "EXCHANGE": "paper",
    } | dict(args.overrides)
    origins = option_origins(args.overrides) | {"STARTING_BALANCE": f"--balance {args.balance:g}"}
    scaled = {name: args.balance * share for name, share in CAPS_SCALED.items()
              if name not in os.environ and name not in args.overrides}
    scaled_origins = {name: f"{CAPS_SCALED[name]:.1%} of --balance {args.balance:g}"
                      .replace(".0%", "%") for name in scaled}
    try:
        load_settings(**given)
        return load_settings(**(given | scaled))
    except ConfigError as exc:
        raise flag_named(exc, origins | scaled_origins) from None


def check_span(args: ReplayArgs, feed: ReplayFeed) -> None:
    """A span the files' replayed candles miss would replay nothing (or their first step
    alone): a FeedError naming the files' own span instead."""
    first, last = (datetime.fromtimestamp(ms / 1000, UTC) for ms in feed.span_ms())
    span = (f"{_minute(first)}, after the {feed.warmup}-candle warm-up, to {_minute(last)}")
    if args.end is not None and args.end <= first:
        raise FeedError(f"invalid --end: {_minute(args.end)} is not after the first candle "
                        f"replayed (the files replay from {span})")
    if args.start is not None and args.start > last:
        raise FeedError(f"invalid --start: {_minute(args.start)} is after the last candle "
                        f"replayed (the files replay from {span})")


def _minute(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def build_replay(args: ReplayArgs, hold: Callable[[str, str], None] | None = None
                 ) -> tuple[Runtime, ReplayFeed]:
    """The run's runtime and feed. ``hold`` is called with the database URL and the run's
    name before anything of the run is read: ``run_replay`` takes the run's lock there."""
    feed = ReplayFeed(args.candles)
    check_span(args, feed)
    settings = replay_settings(args, feed)
    upgrade(settings.database_url)
    factory = session_factory(make_engine(settings.database_url))
    run_settings = args.recorded_settings(settings)
    run_name = args.run_name(settings_hash(run_settings))
    # The run answers to its own name, never to BOT_NAME: in a database a live bot runs
    # on, that is the bot's, whose commands and heartbeat a replay must not take.
    settings = settings.model_copy(update={"bot_name": run_name})
    if hold is not None:
        hold(settings.database_url, run_name)
    with factory() as db:
        register_replay(db, run_name, datetime.now(UTC))
        db.commit()
    if args.start is not None:  # a resumed run seeks to its stored clock afterwards
        start_ms = int(args.start.timestamp() * 1000)
        while feed.now_ms() < start_ms and feed.advance():
            pass
    venue = PaperVenue(
        feed, PaperStore(factory, run_name), starting_balance=settings.starting_balance,
        maker_fee=settings.maker_fee, taker_fee=settings.taker_fee,
        slippage_cap_pct=settings.paper_slippage_cap_pct, volume_share=settings.paper_volume_share,
        defer_clock=True,  # an iteration follows every step: its market data carries the clock
    )
    runtime = Runtime(settings=settings, db=factory, venue=venue, engine=_engine(args, settings),
                      shadow=build_shadow(settings), kind="replay", run_name=run_name,
                      run_settings=run_settings)
    return runtime, feed


def _engine(args: ReplayArgs, settings: Settings) -> DecisionEngine:
    """The settings' engine; an LLM serves its answers from the recording when one is given.

    The recording is not part of the run's name: it changes what a decision costs to
    obtain, not what it is.
    """
    if args.recording is None:
        return build_engine(settings)
    return build_engine(settings, Recording(args.recording, refresh=args.record))


def run_replay(args: ReplayArgs, *, progress: bool = True,
               observer: Callable[[Runtime], None] | None = None,
               max_steps: int | None = None) -> dict:
    """Replay to the end (or ``args.end``, or ``max_steps`` candles) and summarize.

    The loop is the live bot's driver (``bot.loop.drive``) on a ``SimulatedClock``, so a
    STOP ends a replay as it ends a bot. A run that reached its end is marked finished and
    only summarized when run again; one that did not (killed, stopped, or cut short by
    ``max_steps``) resumes. ``observer`` sees the runtime after every iteration: the bench
    sums the step timings there, so what it measures is this loop and not a copy of it.

    One process at a time steps a run (``BotAlreadyRunning`` for a second): two would step
    its one account and write its rows over each other's.
    """
    locks: list[BotLock] = []

    def hold(url: str, run_name: str) -> None:
        lock = BotLock(url, run_name)
        lock.acquire()
        locks.append(lock)

    try:
        return _replayed(args, build_replay(args, hold), progress, observer, max_steps)
    finally:
        for lock in locks:
            lock.release()


def _replayed(args: ReplayArgs, built: tuple[Runtime, ReplayFeed], progress: bool,
              observer: Callable[[Runtime], None] | None, max_steps: int | None) -> dict:
    rt, feed = built
    warnings = balance_warnings(rt.settings.starting_balance, (
        (symbol, feed.base_timeframe, feed.all_rows(symbol)[:, [4, 5]].tolist())
        for symbol in feed.symbols))
    for warning in warnings:
        log.warning(warning)
    with rt.db() as db:
        finished = run_finished_at(db, rt.run_name) is not None
    if not finished:
        if progress:
            sys.stderr.write(f"replay run {rt.run_name} (stop it: python -m bot command stop "
                             f"--bot {rt.run_name} --db URL)\n")
        end_ms = int(args.end.timestamp() * 1000) if args.end else None
        total = min(feed.remaining_steps(end_ms) + 1, max_steps or sys.maxsize)
        bar = _Progress(total) if progress and sys.stderr.isatty() else None
        ended = drive(rt, SimulatedClock(), max_iterations=max_steps, until=args.end,
                      observer=_observers(observer, bar))
        if bar:
            bar.finish()
        if ended in (Ended.FEED_ENDED, Ended.UNTIL):
            finish(rt)
    else:
        # a kill between the mark and its rollups leaves them unwritten; each call writes
        # only what is missing
        roll_up_finished(rt)
    with rt.db() as db:
        contamination = run_contamination(db, rt.session_ids(db))
    if contamination:
        log.warning(contamination)
    return summarize(rt) | {"warnings": warnings, "contamination": contamination}


def finish(rt: Runtime) -> None:
    """Close a run that reached its end: book its last step's fills, then mark it finished
    with its summary and warnings, which are what it reads as from then on, and roll up
    its last day and its decisions (``bot.rollups``).

    The loop books a step's entry fills at the next step's fill sync, which the last step
    has none of: unbooked, they were booked by whichever later run redid that step, so a
    run resumed after its last step had a fill more than the uninterrupted one. A kill
    before the mark redoes the last step, which books nothing twice.
    """
    sync_fills(rt)
    with rt.db() as db:
        record = finished_record(db, rt.session_ids(db), rt.settings.starting_balance,
                                 rt.run_name)
        mark_finished(db, rt.run_name, datetime.now(UTC), record)
    roll_up_finished(rt)  # after the mark: a run killed before it redoes its last step


def roll_up_finished(rt: Runtime) -> None:
    """A finished run's rollups: its every day's (the last one's too), and its decisions
    scored as far as its candles reach. Each writes only what is missing."""
    roll_up(rt, finished=True)
    roll_up_scores(rt)


class SimulatedClock:
    """A replay's time: the next candle follows the iteration at once (the driver's
    ``advance_clock`` is the whole of its passing). Commands are obeyed by the loop's
    commands step, whose polls ``bot.steps.commands`` spaces in real time; no heartbeat is
    written per step, which would add a transaction to a holding step's two."""

    def iterated(self, rt: Runtime) -> None:
        pass

    def wait(self, rt: Runtime) -> None:
        pass


def _observers(observer: Callable[[Runtime], None] | None,
               bar: _Progress | None) -> Callable[[Runtime], None] | None:
    """The caller's observer and the progress bar, as the driver's one hook."""
    if bar is None:
        return observer
    steps = 0

    def observe(rt: Runtime) -> None:
        nonlocal steps
        steps += 1
        if observer is not None:
            observer(rt)
        bar.update(steps)
    return observe


class _Progress:
    def __init__(self, total: int) -> None:
        self.total, self.started, self.last = total, time.monotonic(), 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate else 0
        filled = int(30 * done / self.total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} candles "
                         f"{rate:,.0f}/s ETA {eta:,.0f}s ")
        sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write("\n")


def summarize(rt: Runtime) -> dict:
    """The run's summary, computed from its rows by the query the console's page uses too."""
    with rt.db() as db:
        return run_summary(db, rt.session_ids(db), rt.settings.starting_balance, rt.run_name)
