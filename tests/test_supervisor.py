"""The bot supervisor: state from the heartbeat, and restart-with-backoff of a crashing child.

A stand-in child process (plain ``python -c``) replaces the bot so that these tests check
the supervisor's own logic; the bot's real CLI is covered by the process tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bot.loop import heartbeat
from bot.model.vocabulary import CommandKind
from bot.steps.commands import obey_commands
from bot.supervisor import Supervisor, classify
from db.commands import enqueue_command
from db.engine import make_engine, session_factory
from db.heartbeat import beat
from tests.conftest import candle_file
from tests.loop_harness import make_runtime
from tests.waiting import wait_for

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def _row(**fields):
    row = {"state": "running", "heartbeat_at": NOW - timedelta(seconds=5), "pid": 4242,
           "loop_interval_seconds": 10.0, "paused": False, "last_error": None}
    row.update(fields)
    return row


@pytest.mark.parametrize(
    ("row", "alive", "expected"),
    [
        (None, False, "stopped"),
        (None, True, "starting"),
        (_row(), True, "running"),
        (_row(), None, "running"),  # pid on another host: heartbeat age decides
        (_row(state="paused", paused=True), True, "paused"),
        (_row(heartbeat_at=NOW - timedelta(seconds=61)), True, "stale"),  # > 3×10 + 30
        (_row(heartbeat_at=NOW - timedelta(seconds=59)), True, "running"),
        (_row(), False, "crashed"),  # says running, pid is dead
        (_row(state="starting"), False, "crashed"),
        (_row(state="crashed", last_error="boom"), None, "crashed"),
        (_row(state="stopped"), False, "stopped"),
        (_row(state="stopped"), True, "stopping"),  # carried out STOP, its process exiting
        (_row(state="stopped", pid=None), True, "starting"),  # not yet beaten
    ],
)
def test_classify(row, alive, expected):
    assert classify(row, NOW, process_alive=alive).state == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wait_exit(supervisor: Supervisor) -> int:
    wait_for(lambda: supervisor.exit_code() is not None, every=0.05)
    return supervisor.exit_code()


def test_crash_restarts_with_exponential_backoff(sqlite_url, tmp_path):
    clock = FakeClock()
    supervisor = Supervisor(
        sqlite_url, data_dir=tmp_path / "data", command=[sys.executable, "-c", "raise SystemExit(1)"],
        backoff_base_s=2, backoff_max_s=5, clock=clock,
    )
    supervisor.start()
    assert _wait_exit(supervisor) == 1
    assert supervisor.state().state == "crashed"
    assert supervisor.tick() == "crashed: restart in 2s"
    assert supervisor.tick() == "waiting"
    clock.now += 2
    assert supervisor.tick() == "restarted"
    _wait_exit(supervisor)
    assert supervisor.tick() == "crashed: restart in 4s"
    clock.now += 4
    assert supervisor.tick() == "restarted"
    _wait_exit(supervisor)
    assert supervisor.tick() == "crashed: restart in 5s"  # capped
    assert "exit 1" in (supervisor.last_exit or "")


@pytest.mark.parametrize(("code", "why"), [(0, "stopped cleanly"), (3, "lock")])
def test_clean_exit_or_lock_is_not_restarted(sqlite_url, tmp_path, code, why):
    supervisor = Supervisor(sqlite_url, data_dir=tmp_path / "data",
                            command=[sys.executable, "-c", f"raise SystemExit({code})"])
    supervisor.start()
    assert _wait_exit(supervisor) == code
    assert supervisor.tick() == "exited"
    assert supervisor.tick() == "idle"
    assert why in (supervisor.last_exit or "")


def test_stop_terminates_and_forgets(sqlite_url, tmp_path):
    supervisor = Supervisor(sqlite_url, data_dir=tmp_path / "data",
                            command=[sys.executable, "-c", "import time; time.sleep(60)"])
    pid = supervisor.start()
    assert supervisor.pid() == pid and supervisor.pid_file.exists()
    assert supervisor.start() == pid  # idempotent while alive
    assert supervisor.stop(timeout_s=5)
    assert supervisor.pid() is None and not supervisor.pid_file.exists()
    assert supervisor.tick() == "idle"  # an operator stop is never undone by the watchdog


def test_a_bot_started_elsewhere_is_watched_not_restarted_after_its_stop(sqlite_url, tmp_path):
    """The console adopts a bot already running on this machine (``python -m bot run`` from
    a shell): while it runs no restart is pending, and once it stops (a STOP command) the
    console does not start another one in its place."""
    outside = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()", "bot", "run"])
    try:
        with session_factory(make_engine(sqlite_url))() as db:
            beat(db, "default", datetime.now(UTC), state="running", host=socket.gethostname(),
                 pid=outside.pid, loop_interval_seconds=10.0)
        clock = FakeClock()
        supervisor = Supervisor(sqlite_url, data_dir=tmp_path / "data", clock=clock,
                                command=[sys.executable, "-c", "raise SystemExit(1)"])
        assert supervisor.ensure_running() == outside.pid
        assert supervisor.tick() == "ok"
        assert supervisor.restart_pending_in is None
        outside.terminate()
        outside.wait(10)
        with session_factory(make_engine(sqlite_url))() as db:
            beat(db, "default", datetime.now(UTC), state="stopped")
        assert supervisor.tick() == "exited"
        clock.now += 600
        assert supervisor.tick() == "idle"
        assert supervisor.exit_code() is None  # no process of ours was started
        assert "stopped" in (supervisor.last_exit or "")
    finally:
        outside.kill()
        outside.wait(10)


@pytest.mark.parametrize("beaten", [False, True], ids=["before-the-beat", "after-the-beat"])
def test_a_bot_killed_after_its_stop_stays_stopped(sqlite_url, tmp_path, beaten):
    """The operator's STOP carried out (the real command step; ``beaten``: and the heartbeat
    that ends its iteration), then the process killed before it could exit: the supervisor
    that started it does not start another against the operator's intent."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], kind="live",
                      run_name="live")
    clock = FakeClock()
    supervisor = Supervisor(sqlite_url, data_dir=tmp_path / "data", clock=clock, command=[
        sys.executable, "-c", "import signal; signal.pause()", "bot", "run"])
    pid = supervisor.start()
    with rt.db() as db:  # the bot's own beat, as ``bot.loop.start`` writes it in the child
        beat(db, rt.settings.bot_name, datetime.now(UTC), state="running", pid=pid,
             host=socket.gethostname(), loop_interval_seconds=10.0)
        enqueue_command(db, CommandKind.STOP, bot=rt.settings.bot_name)
        db.commit()
    assert supervisor.tick() == "ok"
    assert obey_commands(rt) == 1 and rt.stop_requested
    if beaten:
        heartbeat(rt)  # the iteration's beat; the loop beats "stopped" and exits after it
    os.kill(pid, signal.SIGKILL)
    assert _wait_exit(supervisor) == -signal.SIGKILL
    assert supervisor.tick() == "exited"
    assert supervisor.state().state == "stopped"
    clock.now += 600
    assert supervisor.tick() == "idle" and supervisor.pid() is None
    assert "STOP" in (supervisor.last_exit or "")
