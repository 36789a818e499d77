"""Crashes: SIGKILL the replay at random moments, and crash it at the worst exact points.

Whatever the moment, after restarting with the same arguments the audit is clean and the
fills equal those of an uninterrupted run. The random kills show the whole process copes;
the exact crash points pin the windows a random kill rarely hits (between the venue's fill
and our journal, between the journal and the send, between a decision's trace and its
execution, between fetching a candle and checking the plans against it).
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import bot.loop
import bot.steps.decide
from bot.audit import audit
from bot.engine.schema import ActionType
from bot.loop import run_iteration, start
from bot.replay import ReplayArgs, build_replay, summarize
from bot.runtime import Runtime
from tests.conftest import ROOT, candle_file
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # kills and restarts replays, in processes and in-process

KILLS = 4
SEED = 20240611


class Crash(BaseException):
    """Stands in for SIGKILL inside the process: no ``except Exception`` catches it."""


def crash_before_selling(rt: Runtime) -> None:
    """Make the venue kill the bot as a sell is sent: its exit is journaled, not sent."""
    real = rt.venue.create_order

    def create_order(symbol, type, side, *args, **kwargs):
        if side == "sell":
            raise Crash("exit journaled, not sent")
        return real(symbol, type, side, *args, **kwargs)

    rt.venue.create_order = create_order  # type: ignore[method-assign]


def cut_file(tmp_path: Path, candles: int) -> Path:
    """The first ``candles`` rows of the real BTC/USDT file (200 of them are warm-up)."""
    source = candle_file("BTC_USDT-5m.csv")
    folder = tmp_path / f"cut{candles}"
    folder.mkdir(exist_ok=True)
    cut = folder / source.name
    cut.write_text("".join(source.read_text().splitlines(keepends=True)[: candles + 1]))
    return cut


def replay_cmd(cut: Path, db_url: str) -> list[str]:
    return [sys.executable, "-m", "bot", "replay", "--candles", str(cut), "--db", db_url, "--json"]


def audit_cli(db_url: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bot", "audit", "--db", db_url, "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] else 1)
    return report


def steps_done(db_file: Path) -> int:
    """Steps a replay has committed (one decision trace each); 0 before its schema exists.
    Read-only, so polling never creates the file or takes a write lock (the store is WAL)."""
    try:
        with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM llm_traces").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_at_random_moments_then_restart_gives_the_same_fills(tmp_path) -> None:
    cut = cut_file(tmp_path, 450)  # 250 steps after the warm-up
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    killed_db = tmp_path / "killed.db"
    killed_url = f"sqlite:///{killed_db}"
    reference = subprocess.Popen(replay_cmd(cut, reference_url), cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # each run is killed once the store holds a random step count; a target the resumed run
    # already passed kills it during its start-up, so kills land in start-up and mid-run alike
    kill_at = sorted(random.Random(SEED).sample(range(200), KILLS))
    for target in kill_at:
        process = subprocess.Popen(replay_cmd(cut, killed_url), cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda p=process, n=target: steps_done(killed_db) >= n or p.poll() is not None,
                 timeout=120, every=0.02)
        process.kill()  # SIGKILL: no handler, no flush, no cleanup
        process.wait()
    finished = subprocess.run(replay_cmd(cut, killed_url), cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    out, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err[-3000:]
    expected, got = json.loads(out), json.loads(finished.stdout)
    assert expected["trades"] > 0
    assert got["fingerprint"] == expected["fingerprint"]
    assert got["trades"] == expected["trades"]
    assert audit_cli(killed_url)["ok"], audit_cli(killed_url)


# --- exact crash points, in process ---------------------------------------------------------


def run_crashing(args: ReplayArgs, arm: Callable[[Runtime], None], restarts: int = 3) -> dict:
    """Replay to the end; ``arm`` installs a fault in each of the first runtimes.

    A Crash abandons the runtime as a kill would (uncommitted work is rolled back with
    the database session); the next runtime is built from the database alone.
    """
    crashes = 0
    while True:
        rt, _ = build_replay(args)
        start(rt)
        if crashes < restarts:
            arm(rt)
        try:
            while True:
                run_iteration(rt)
                if not rt.venue.advance():
                    break
        except Crash:
            crashes += 1
            continue
        summary = summarize(rt)
        summary["crashes"] = crashes
        with rt.db() as db:
            assert all(c.ok for c in audit(db)), [c for c in audit(db) if not c.ok]
        return summary


@pytest.fixture(scope="module")
def short_cut(tmp_path_factory) -> Path:
    return cut_file(tmp_path_factory.mktemp("kill"), 400)


@pytest.fixture(scope="module")
def uninterrupted(short_cut: Path, tmp_path_factory) -> dict:
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    summary = run_crashing(ReplayArgs([short_cut], url), lambda rt: None, restarts=0)
    assert summary["trades"] >= 4, "the cut must trade for the crash points to matter"
    return summary


def _same_fills(summary: dict, uninterrupted: dict) -> None:
    assert summary["crashes"] >= 1, "the crash point was never reached"
    assert summary["fingerprint"] == uninterrupted["fingerprint"]
    assert summary["trades"] == uninterrupted["trades"]


def _crash_on_order(when: str) -> Callable[[Runtime], None]:
    """Crash on the 2nd order of a runtime, before or after the venue has it."""

    def arm(rt: Runtime) -> None:
        real, calls = rt.venue.create_order, []

        def create_order(*args, **kwargs):
            calls.append(args)
            if len(calls) == 2 and when == "before":
                raise Crash("journaled, not sent")
            placed = real(*args, **kwargs)
            if len(calls) == 2:
                raise Crash("the venue filled it; our journal never heard")
            return placed

        rt.venue.create_order = create_order  # type: ignore[method-assign]

    return arm


@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_around_the_venue_call_neither_loses_nor_doubles_an_order(
    short_cut, uninterrupted, tmp_path, when: str
) -> None:
    args = ReplayArgs([short_cut], f"sqlite:///{tmp_path / 'crash.db'}")
    _same_fills(run_crashing(args, _crash_on_order(when)), uninterrupted)


@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_between_a_decision_and_its_outcome_enters_once(
    short_cut, uninterrupted, tmp_path, monkeypatch, when: str
) -> None:
    """The trace is committed; the crash comes before or after its BUY was executed."""
    real = bot.steps.decide.execute_action
    fired: list[int] = []

    def execute_action(rt, db, action, trace_id, state, index=0):
        buying = (action.action == ActionType.BUY and trace_id not in fired
                  and len(fired) < 3)
        if buying and when == "before":
            fired.append(trace_id)
            raise Crash("trace written, action not executed")
        outcome = real(rt, db, action, trace_id, state, index)
        if buying:
            fired.append(trace_id)
            raise Crash("entry placed, trace has no outcome")
        return outcome

    monkeypatch.setattr(bot.steps.decide, "execute_action", execute_action)
    args = ReplayArgs([short_cut], f"sqlite:///{tmp_path / 'crash.db'}")
    summary = run_crashing(args, lambda rt: None, restarts=0)
    summary["crashes"] = len(fired)
    _same_fills(summary, uninterrupted)


def test_crash_after_a_wick_is_fetched_and_before_plans_are_checked(
    short_cut, uninterrupted, tmp_path, monkeypatch
) -> None:
    """The candle that touched a stop or target is stored; the restart must still see it."""
    fired: list[object] = []
    steps = list(bot.loop.STEPS)
    index = [step.name for step in steps].index("plans")
    real = steps[index].run

    def plans(rt: Runtime) -> None:
        from db.plans import active_plans

        with rt.db() as db:
            plans_open = [p for p in active_plans(db, rt.session_id) if p.status == "open"]
        for plan in plans_open:
            quote = rt.quotes.get(plan.symbol)
            if quote is None or quote.extremes_from_ms is None:
                continue
            wick = (quote.low_since_check <= plan.stop_price < quote.last
                    or quote.last < plan.target_price <= quote.high_since_check)
            if wick and plan.id not in fired and len(fired) < 3:
                fired.append(plan.id)
                raise Crash("candle stored, plans not checked")
        real(rt)

    steps[index] = steps[index]._replace(run=plans)
    monkeypatch.setattr(bot.loop, "STEPS", tuple(steps))
    args = ReplayArgs([short_cut], f"sqlite:///{tmp_path / 'crash.db'}")
    summary = run_crashing(args, lambda rt: None, restarts=0)
    summary["crashes"] = len(fired)
    _same_fills(summary, uninterrupted)


def _crash_on_the_new_day(when: str) -> Callable[[Runtime], None]:
    """Crash a runtime in the new day's first step: before its first candle is fetched (the
    new session has none: the restart goes on from the previous session's), or once it is
    stored, before the decision reads the run's candles."""

    def arm(rt: Runtime) -> None:
        first_day = rt.session_id
        target = rt.venue if when == "before storing" else rt.store
        name = "fetch_ohlcv" if when == "before storing" else "market_written"
        real = getattr(target, name)

        def crashing(*args, **kwargs):
            if when == "before storing" and rt.session_id != first_day:
                raise Crash("the new day's session opened, no candle stored")
            done = real(*args, **kwargs)
            if rt.session_id != first_day:
                raise Crash("the new day's first candles stored, not decided on")
            return done

        setattr(target, name, crashing)

    return arm


@pytest.mark.parametrize("when", ["before storing", "after storing"])
def test_a_run_killed_across_a_day_boundary_resumes_to_the_same_fills(
    short_cut, uninterrupted, tmp_path, when: str
) -> None:
    """The cut crosses midnight 175 steps in; each runtime armed crashes at the new day's
    first step, the next resumes on the run's candles (each stored once)."""
    args = ReplayArgs([short_cut], f"sqlite:///{tmp_path / 'crash.db'}")
    summary = run_crashing(args, _crash_on_the_new_day(when), restarts=1)
    _same_fills(summary, uninterrupted)
    with sqlite3.connect(tmp_path / "crash.db") as db:
        days = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
        twice = db.execute("SELECT count(*) FROM (SELECT 1 FROM ohlcv GROUP BY symbol, "
                           "timeframe, timestamp HAVING count(*) > 1)").fetchone()[0]
    assert (days, twice) == (2, 0)


def test_restart_resends_an_unsent_exit_but_not_a_stale_entry(sqlite_url) -> None:
    """Journal rows left ``new`` by a crash: a non-entry goes out, an hour-old entry does not."""
    from sqlalchemy import select

    from bot.execution import journal_new_order, resume_unsent_orders
    from db.models import Order, Trade
    from tests.loop_harness import ScriptedEngine, make_runtime, step

    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([]))
    with rt.db() as db:
        stale = journal_new_order(rt, db, symbol="BTC/USDT", side="BUY", amount=0.01,
                                  purpose="entry", reason="decided before the crash")
    for _ in range(13):  # an hour passes on the replay clock while the bot is down
        assert rt.venue.advance()
    with rt.db() as db:
        journal_new_order(rt, db, symbol="BTC/USDT", side="BUY", amount=0.01,
                          purpose="adopted", reason="held")
    assert resume_unsent_orders(rt) == 2
    with rt.db() as db:
        orders = {o.purpose: o for o in db.scalars(select(Order))}
        assert orders["entry"].id == stale.id and orders["entry"].status == "failed"
        assert orders["adopted"].status == "closed" and orders["adopted"].order_id
    step(rt)
    with rt.db() as db:
        (trade,) = db.scalars(select(Trade))
        assert trade.client_order_id == orders["adopted"].client_order_id
