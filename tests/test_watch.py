"""Who notices a dead bot: the fleet watch alerts once per incident (stale or crashed) and
again on recovery, from heartbeats in a real database read at the times of a fake clock;
the console's supervisor tells it of the bot it runs; ``python -m bot watch`` notifies."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from bot.__main__ import main
from bot.alerts.watch import FleetWatch
from bot.model.events import Event, EventKind
from bot.supervisor import Supervisor
from db.engine import make_engine, session_factory
from db.heartbeat import beat
from db.migrate import upgrade
from tests.notify_server import notify_server
from tests.waiting import wait_for

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def beat_at(factory, name: str, when: datetime, **fields) -> None:
    with factory() as db:
        beat(db, name, when, state="running", mode="PAPER", loop_interval_seconds=10.0,
             **fields)


def test_an_incident_is_told_once_and_its_end_once(sqlite_url) -> None:
    upgrade(sqlite_url)
    factory = session_factory(make_engine(sqlite_url))
    told: list[Event] = []
    watch = FleetWatch(told.append)
    beat_at(factory, "alpha", T0, host="elsewhere", pid=1)
    beat_at(factory, "beta", T0, host=socket.gethostname(), pid=dead_pid())
    watch.sweep(factory, T0 + timedelta(seconds=5))
    assert [(e.kind, e.bot) for e in told] == [(EventKind.BOT_DOWN, "beta")]
    assert told[0].text.startswith("crashed: its process is gone")
    watch.sweep(factory, T0 + timedelta(seconds=59))  # alpha: 3 × 10 s + 30 s of grace
    assert len(told) == 1
    watch.sweep(factory, T0 + timedelta(seconds=61))
    assert [(e.kind, e.bot) for e in told[1:]] == [(EventKind.BOT_DOWN, "alpha")]
    assert "last heartbeat 61 s ago" in told[1].text
    watch.sweep(factory, T0 + timedelta(hours=1))  # still down: nothing new
    assert len(told) == 2
    beat_at(factory, "alpha", T0 + timedelta(hours=1))
    watch.sweep(factory, T0 + timedelta(hours=1, seconds=5))
    assert [(e.kind, e.bot, e.text) for e in told[2:]] == [
        (EventKind.BOT_RECOVERED, "alpha", "is running again (it was stale)")]
    watch.sweep(factory, T0 + timedelta(hours=1, seconds=10))
    assert len(told) == 3


def test_the_supervisor_tells_of_the_crash_of_its_bot_and_its_restart(sqlite_url, tmp_path):
    told: list[Event] = []
    clock = [1000.0]
    supervisor = Supervisor(sqlite_url, data_dir=tmp_path / "data",
                            command=[sys.executable, "-c", "raise SystemExit(1)"],
                            backoff_base_s=2, clock=lambda: clock[0],
                            watch=FleetWatch(told.append))
    supervisor.start()
    wait_for(lambda: supervisor.exit_code() is not None, every=0.05)
    assert supervisor.tick() == "crashed: restart in 2s"
    assert supervisor.tick() == "waiting"
    assert [(e.kind, e.bot) for e in told] == [(EventKind.BOT_DOWN, "default")]
    # a bot that runs until it is stopped: it waits for a signal, not for a time
    supervisor.command = [sys.executable, "-c", "import signal; signal.pause()"]
    clock[0] += 2
    assert supervisor.tick() == "restarted"
    try:
        assert supervisor.tick() == "ok"
        assert [(e.kind, e.text) for e in told[1:]] == [
            (EventKind.BOT_RECOVERED, "is starting again (it was crashed)")]
    finally:
        supervisor.stop(timeout_s=5)


def test_watch_once_notifies_a_stale_bot(sqlite_url, monkeypatch) -> None:
    upgrade(sqlite_url)
    factory = session_factory(make_engine(sqlite_url))
    beat_at(factory, "gamma", datetime.now(UTC) - timedelta(hours=2), host="elsewhere", pid=1)
    with notify_server() as (url, received):
        monkeypatch.setenv("NOTIFY_URLS", url)
        assert main(["watch", "--db", sqlite_url, "--once"]) == 0
        wait_for(lambda: received.containing("[PAPER] gamma: heartbeat stale: last heartbeat"))


def test_watch_once_from_cron_tells_an_incident_once_and_its_end(sqlite_url,
                                                                  monkeypatch) -> None:
    """Each ``--once`` is a new process: the incidents it told are kept in a file
    (``--state``, by default under data/) for the next run."""
    upgrade(sqlite_url)
    factory = session_factory(make_engine(sqlite_url))
    beat_at(factory, "gamma", datetime.now(UTC) - timedelta(hours=2), host="elsewhere", pid=1)
    with notify_server() as (url, received):
        monkeypatch.setenv("NOTIFY_URLS", url)
        for _ in range(3):
            assert main(["watch", "--db", sqlite_url, "--once"]) == 0
        beat_at(factory, "gamma", datetime.now(UTC), host="elsewhere", pid=1)
        assert main(["watch", "--db", sqlite_url, "--once"]) == 0
        assert main(["watch", "--db", sqlite_url, "--once"]) == 0
        wait_for(lambda: received.containing("gamma: is running again (it was stale)"))
    assert len(received.containing("gamma: heartbeat stale")) == 1
    assert len(received.containing("gamma: is running again")) == 1


def test_watch_without_urls_says_what_it_needs(sqlite_url, monkeypatch, capsys) -> None:
    monkeypatch.delenv("NOTIFY_URLS", raising=False)
    assert main(["watch", "--db", sqlite_url, "--once"]) == 2
    assert "watch needs NOTIFY_URLS" in capsys.readouterr().err


def test_watch_once_names_a_state_path_that_is_a_directory(sqlite_url, tmp_path, monkeypatch,
                                                           capsys) -> None:
    """``--state`` at a folder: the look alerted the stale bot, then its save of the
    incidents ended in IsADirectoryError's traceback, exit 1, so the next look alerted
    again. The folder is named before anything is told."""
    upgrade(sqlite_url)
    factory = session_factory(make_engine(sqlite_url))
    beat_at(factory, "gamma", datetime.now(UTC) - timedelta(hours=2), host="elsewhere", pid=1)
    with notify_server() as (url, received):
        monkeypatch.setenv("NOTIFY_URLS", url)
        code = main(["watch", "--db", sqlite_url, "--once", "--state", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"--state: {tmp_path} is a directory" in err and "Traceback" not in err, err
        assert main(["watch", "--db", sqlite_url, "--once"]) == 0  # told once, by this look
        wait_for(lambda: received.containing("gamma: heartbeat stale"))
    assert len(received.containing("gamma: heartbeat stale")) == 1
