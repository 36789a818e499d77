"""The loop: the seed's steps in order, each timed, none able to stop the others.

``run_iteration`` reads as the list of its steps. Plan enforcement runs on every iteration
whatever else failed or was skipped; every exception is logged and lands on the heartbeat.
``drive`` repeats it for the live bot (``run_forever``) and for a replay (``bot.replay``)
alike: they differ only in their ``Clock`` and their feed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from sqlalchemy.orm import Session as OrmSession

from bot.account import start_of_day_equity
from bot.config import ConfigError
from bot.execution import resume_unsent_orders
from bot.position_snapshot import positions_written, write_positions
from bot.prune import earliest_day, prune_days
from bot.rollups import roll_up, roll_up_scores
from bot.run_settings import canonical_json, settings_hash
from bot.runtime import Runtime
from bot.steps.commands import URGENT, obey_commands
from bot.steps.decide import book_abandoned_calls, decide_and_execute
from bot.steps.fill_sync import sync_fills
from bot.steps.market_data import fetch_market_data
from bot.steps.plans import enforce_plans
from bot.steps.resync import resync_orders_and_positions
from bot.venue.base import TransientVenueError
from db.commands import has_pending
from db.engine import bound_engine
from db.heartbeat import beat, counted_loop, status_row
from db.orders import owed_exits
from db.plans import active_plans
from db.retry import described, is_outage
from db.sessions import find_session, latest_session, open_session, trading_day
from db.stats import is_stale, rebuild_stats

log = logging.getLogger("tradedesk.loop")
SLEEP_SLICE_SECONDS = 0.25
LISTEN_POLL_SECONDS = 2.0  # with LISTEN/NOTIFY the table is polled only as a fallback

class Step(NamedTuple):
    """One step of an iteration. A step that ``decides`` may open positions, so it is
    skipped while the bot is paused or stopping; every other step runs whatever happens
    (plan enforcement above all)."""

    name: str
    run: Callable[[Runtime], object]
    decides: bool = False


STEPS: tuple[Step, ...] = (
    Step("market_data", fetch_market_data),
    Step("resync", resync_orders_and_positions),
    Step("fill_sync", sync_fills),
    Step("plans", enforce_plans),
    Step("decide", decide_and_execute, decides=True),
    Step("commands", obey_commands),
)


def run_iteration(rt: Runtime) -> None:
    """One pass of the loop: roll the day if needed, then every step in order."""
    rt.errors.clear()
    roll_session(rt)
    if rt.abandoned_calls:
        try:
            book_abandoned_calls(rt)
        except Exception as exc:
            rt.note_error("booking abandoned LLM calls", exc)
    for step in STEPS:
        if step.decides and (rt.paused or rt.stop_requested):
            continue
        started = time.perf_counter()
        try:
            step.run(rt)
        except Exception as exc:
            rt.note_error(step.name, exc)
        rt.step_durations[step.name] = round((time.perf_counter() - started) * 1000, 3)


def roll_session(rt: Runtime) -> None:
    """Open the day's session (at start and at midnight in SESSION_TIMEZONE).

    Positions, plans and orders belong to the run, not the day, so nothing is flattened or
    forgotten at the rollover; only the day's aggregates start afresh, from the account as
    the rollover finds it (``start_of_day_equity``). It runs before the steps, so the fill
    sync books the new day's fills into the new session.
    """
    now = rt.now()
    day = trading_day(now, rt.settings.session_timezone)
    if day == rt.session_day:
        return
    with rt.db() as db:
        opened = find_session(db, rt.kind, rt.run_name, day) is not None
    equity = 0.0  # an opened session keeps the equity it started with
    if not opened:
        try:
            equity = start_of_day_equity(rt, now)
        except TransientVenueError as exc:
            if rt.session_day is not None:  # the day before goes on until the venue answers
                rt.note_error("start-of-day equity (the new day waits for the venue)", exc)
                return
            rt.note_error("start-of-day equity", exc)
            equity = rt.settings.starting_balance
        except Exception as exc:
            rt.note_error("start-of-day equity", exc)
            equity = rt.settings.starting_balance
    with rt.db() as db:
        session = open_session(
            db, kind=rt.kind, run_name=rt.run_name, day=day, mode=rt.settings.trading_mode,
            venue=rt.venue.name, feed=rt.venue.market, equity=equity, now=now,
            settings=canonical_json(rt.run_settings), settings_hash=settings_hash(rt.run_settings),
        )
        if is_stale(db, session.id):
            rebuild_stats(db, session.id, now)
            db.commit()
    rt.events.day_rolled(rt.db, rt.session_id, rt.session_day)  # the day before, if any
    rolled = rt.session_day is not None
    rt.session_id, rt.session_day = session.id, day
    log.info("session %d for %s", session.id, day)
    if rolled or (not opened and rt.book.open_items()):
        # the run's positions, in the new day's snapshot from its start (a rollover in the
        # sleep is followed by commands, not by the steps that write them; a day a restart
        # opens is shown before the first iteration's steps, which may fail)
        with rt.db() as db:
            positions = write_positions(rt, db, now)
            db.commit()
        positions_written(rt, positions, now)
    roll_up(rt)
    roll_up_scores(rt)
    if rt.settings.retain_days and rt.kind != "replay":
        retain(rt, earliest_day(now))


def retain(rt: Runtime, today: date) -> None:
    """Thin what is older than RETAIN_DAYS, once a day at the rollover (and at start),
    counting from ``today``, the earliest calendar day anywhere (``bot.prune.earliest_day``):
    other bots' days are thinned too. A replay's clock is not the calendar's, so only a live
    run does it; a failure is an error of the day, not of the loop."""
    try:
        with rt.db() as db:
            prune_days(db, today, rt.settings.retain_days,
                       rt.settings.trade_sync_cutoff_minutes)
    except Exception as exc:
        rt.note_error("retention", exc)


def heartbeat(rt: Runtime, state: str | None = None, error: str | None = None) -> None:
    """Beat after an iteration (``state`` None: it counts as a loop) or on a state change;
    ``error`` stands for the iteration's errors (a database outage being waited out)."""
    now = datetime.now(UTC)
    # the count moves in SQL: heartbeat reads no row for it (beat's own read is the only one)
    looped = {"last_loop_at": now, "loop_count": counted_loop()} if state is None else {}
    with rt.db() as db:
        beat(
            db, rt.settings.bot_name, now,
            state=state or _loop_state(rt), paused=rt.paused,
            step_durations=dict(rt.step_durations),
            last_error=error or "\n".join(rt.errors)[-4000:] or None,
            notify_failures=rt.events.failures, **looped,
        )


def _loop_state(rt: Runtime) -> str:
    """The state an iteration's beat writes: a STOP carried out is kept (its command wrote
    it, ``db.heartbeat.keep_stopped``), not beaten back to running before the bot exits."""
    if rt.stop_requested:
        return "stopped"
    return "paused" if rt.paused else "running"


def start(rt: Runtime) -> None:
    """Prepare a runtime: the book from our fills, paused state, the heartbeat identity."""
    rt.load_book()
    now = datetime.now(UTC)
    with rt.db() as db:
        last = latest_session(db, rt.kind, rt.run_name)  # the run ran, and synced, since
        refuse_symbols_left_out(rt, db, None if last is None else last.id)
        row = status_row(db, rt.settings.bot_name)
        rt.paused = bool(row.paused)
        rt.fills_synced_at = None if last is None else last.created_at
        # what the run before the restart owed, it owes still (``bot.booking.exit_plan``)
        rt.owed_exits = {} if last is None else owed_exits(db, last.id)
        beat(
            db, rt.settings.bot_name, now, pid=os.getpid(), host=socket.gethostname(),
            state="starting", mode=rt.settings.trading_mode, venue=rt.venue.name,
            feed=rt.venue.market, engine=rt.engine.name,
            symbols=",".join(rt.settings.symbols), started_at=now,
            loop_interval_seconds=rt.settings.loop_interval_seconds, last_error=None,
        )
    roll_session(rt)
    try:
        resume_unsent_orders(rt)
    except Exception as exc:  # the venue may be down at start; the loop still runs
        rt.note_error("re-sending unsent orders", exc)


def refuse_symbols_left_out(rt: Runtime, db: OrmSession, last_session: int | None) -> None:
    """A ConfigError when SYMBOLS leave out a symbol the run still holds (a position, an
    active plan): the bot tends only its SYMBOLS, so that position's stop would go unwatched,
    its close be refused, and the sale a close-all makes of it never booked."""
    held = set(rt.book.open_items())
    if last_session is not None:
        held |= {plan.symbol for plan in active_plans(db, last_session)}
    left_out = ", ".join(sorted(held - set(rt.settings.symbols)))
    if left_out:
        raise ConfigError(
            f"invalid setting SYMBOLS: it leaves out {left_out}, which bot "
            f"{rt.settings.bot_name!r} still holds (a position or an open plan); it tends only "
            f"its SYMBOLS, so it would neither watch that stop, nor close it, nor book its "
            f"sale. Keep {left_out} in SYMBOLS until it is closed (python -m bot command "
            "close SYMBOL), then leave it out")


class Clock(Protocol):
    """How time passes between two iterations: all that a live bot and a replay do
    differently in ``drive`` (with their feeds). The feed's own step, ``advance_clock``, is
    the driver's and not the clock's."""

    def iterated(self, rt: Runtime) -> None:
        """An iteration has ended."""

    def wait(self, rt: Runtime) -> None:
        """Let the time between two iterations pass."""


class WallClock:
    """A live bot's time: each iteration ends on the heartbeat, then the loop interval is
    slept in real seconds, obeying commands as they arrive."""

    def iterated(self, rt: Runtime) -> None:
        rt.outage.run("heartbeat", lambda: heartbeat(rt))

    def wait(self, rt: Runtime) -> None:
        _sleep_watching_commands(rt)


class Ended(StrEnum):
    """Why ``drive`` returned."""

    STOPPED = "stopped"  # a stop command or a signal
    FEED_ENDED = "feed ended"  # a replayed feed has no next step
    UNTIL = "until"  # the clock reached the driver's ``until``
    MAX_ITERATIONS = "max iterations"


def drive(rt: Runtime, clock: Clock, *, max_iterations: int | None = None,
          until: datetime | None = None,
          observer: Callable[[Runtime], None] | None = None) -> Ended:
    """The one loop driver, live and replay: iterate, let ``clock`` pass the time, step the
    feed, until a stop command, a signal, the end of the feed, ``until`` or
    ``max_iterations``. ``observer`` sees the runtime after every iteration.

    Every database touch goes through ``rt.outage``: a database that is unreachable, locked
    or full is waited out and the loop resumes where it was (a step's own database error
    lands on ``rt.errors`` like any other).
    """
    rt.outage.run("start", lambda: start(rt))
    iterations = 0
    try:
        while True:
            rt.outage.run("iteration", lambda: run_iteration(rt))
            clock.iterated(rt)
            iterations += 1
            if observer is not None:
                observer(rt)
            if rt.stop_requested:
                ended = Ended.STOPPED
                break
            if until is not None and rt.now() >= until:
                ended = Ended.UNTIL
                break
            if max_iterations is not None and iterations >= max_iterations:
                ended = Ended.MAX_ITERATIONS
                break
            clock.wait(rt)
            if rt.stop_requested:
                ended = Ended.STOPPED
                break
            if not advance_clock(rt):
                ended = Ended.FEED_ENDED
                break
    except KeyboardInterrupt:
        log.info("interrupted; stopping")
        ended = Ended.STOPPED
    try:  # once: a stop is not held up by a database that is down
        heartbeat(rt, "stopped")
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("stopped without the last heartbeat: %s", described(exc))
    return ended


def advance_clock(rt: Runtime) -> bool:
    """Move the venue's clock to the feed's next step (a simulated one: a replay's next
    candle); False when a replayed feed has none."""
    return rt.venue.advance()


def run_forever(rt: Runtime, max_iterations: int | None = None) -> None:
    """The live bot: loop until a stop command, a signal, or the end of a replayed feed."""
    rt.urgent_check = lambda: _has_urgent(rt)
    rt.outage.on_wait = lambda text: _outage_wait(rt, text)
    rt.outage.before_retry = lambda: rt.guard.settle(rt)
    drive(rt, WallClock(), max_iterations=max_iterations)


def _outage_wait(rt: Runtime, text: str) -> None:
    """At each wait of a database outage: guard the known stops at the venue (which may
    still answer), then try to say so on the heartbeat."""
    rt.guard.watch(rt)
    heartbeat(rt, "db-outage", error=text)


def _has_urgent(rt: Runtime) -> bool:
    with bound_engine(rt.db).connect() as conn:
        return has_pending(conn, URGENT, rt.settings.bot_name)


def _has_untried(rt: Runtime) -> bool:
    """A command not tried yet waits (one waiting out a venue fault waits for an iteration)."""
    with bound_engine(rt.db).connect() as conn:
        return has_pending(conn, bot=rt.settings.bot_name, untried=True)


def obey_during_sleep(rt: Runtime) -> None:
    """Commands that arrive between iterations: carried out at once, at the market caught up
    to now, in the day of now (rolled first when midnight passed in the sleep)."""
    obey_commands(rt, roll=roll_session)


def _sleep_watching_commands(rt: Runtime) -> None:
    """Sleep one loop interval, obeying commands as they arrive."""
    deadline = time.monotonic() + rt.settings.loop_interval_seconds
    while time.monotonic() < deadline and not rt.stop_requested:
        waiting = rt.outage.run("command poll", lambda: _has_untried(rt))
        if waiting:
            try:
                obey_during_sleep(rt)
            except Exception as exc:
                rt.note_error("commands", exc)
            rt.outage.run("heartbeat", lambda: heartbeat(rt))
        if rt.command_listener is None:
            time.sleep(SLEEP_SLICE_SECONDS)
        else:  # returns at once on a NOTIFY for this bot
            rt.command_listener.wait(
                max(0.0, min(LISTEN_POLL_SECONDS, deadline - time.monotonic())))
