"""Start, stop and watch the bot as its own OS process, and read its state.

The bot never runs inside Streamlit's process: a script rerun, a page error or a server
restart must not touch a loop that holds orders. The console (or a CLI) starts
``python -m bot run`` detached in its own session, remembers the pid in a file under
``data/`` (so another console process finds it), and tells states apart from the heartbeat
the bot writes every loop. A crash is restarted with exponential backoff while a watchdog
supervises; a clean exit is left alone, and so is a bot that carried out a STOP command
and was killed before it could exit (the STOP commits to its heartbeat row).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from db.engine import engine_for, session_factory
from db.heartbeat import heartbeat as read_heartbeat

if TYPE_CHECKING:
    from bot.alerts.watch import FleetWatch

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

STALE_GRACE_SECONDS = 30.0
LIVE_STATES = ("starting", "running", "paused")  # a dead pid in these states is a crash
# its process runs (stopping: it carried out STOP and is still exiting); the fleet counts
# these bots up
RUNNING_STATES = ("running", "paused", "starting", "stopping")
# a process is there: not started again
UP_STATES = (*RUNNING_STATES, "stale")
# exit codes of ``python -m bot run`` that a restart cannot fix (bad config, already running)
NO_RESTART_EXIT_CODES = {2: "invalid configuration", 3: "another bot holds this bot's lock"}


@dataclass(frozen=True)
class BotState:
    """What the console shows: one state word plus the heartbeat's facts."""

    state: str  # running | paused | stale | stopped | crashed | starting | stopping
    pid: int | None = None
    process_alive: bool | None = None  # None: pid on another host, cannot tell
    heartbeat_at: datetime | None = None
    heartbeat_age_s: float | None = None
    last_error: str | None = None
    loop_count: int = 0
    mode: str | None = None
    venue: str | None = None
    engine: str | None = None
    symbols: str | None = None

    @property
    def is_up(self) -> bool:
        return self.state in UP_STATES


def pid_alive(pid: int) -> bool:
    """True when the pid exists and is not a zombie (a zombie answers kill(0) too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def looks_like_bot(pid: int) -> bool:
    """Guard against pid reuse before sending a signal: the command line must be the bot's."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return sys.platform != "linux"  # no /proc: trust the pid file
    return b"bot" in argv and b"run" in argv


def classify(
    row: dict | None, now: datetime, *, process_alive: bool | None = None
) -> BotState:
    """Turn a heartbeat row (and whether our process lives) into one state.

    ``process_alive`` is what the supervisor knows about the bot's pid on this host; None
    means it cannot know (bot on another host), and only the heartbeat's age is used.
    """
    if row is None:
        return BotState(state="starting" if process_alive else "stopped",
                        process_alive=process_alive)
    heartbeat_at = row.get("heartbeat_at")
    age = (now - heartbeat_at).total_seconds() if heartbeat_at else None
    interval = float(row.get("loop_interval_seconds") or 10.0)
    state = row.get("state") or "stopped"
    if state in LIVE_STATES and process_alive is False:
        state = "crashed"
    elif state in LIVE_STATES and (age is None or age > 3 * interval + STALE_GRACE_SECONDS):
        state = "stale"
    elif state == "running" and row.get("paused"):
        state = "paused"
    elif state == "stopped" and process_alive:
        # the row's own pid alive: that bot carried out STOP and is exiting; a row without a
        # pid is not yet beaten by the process just started
        state = "stopping" if row.get("pid") else "starting"
    return BotState(
        state=state, pid=row.get("pid"), process_alive=process_alive, heartbeat_at=heartbeat_at,
        heartbeat_age_s=age, last_error=row.get("last_error"),
        loop_count=int(row.get("loop_count") or 0), mode=row.get("mode"),
        venue=row.get("venue"), engine=row.get("engine"), symbols=row.get("symbols"),
    )


class Supervisor:
    """One bot process per (database, bot name), shared by every console session."""

    def __init__(
        self,
        database_url: str,
        bot_name: str = "default",
        *,
        data_dir: Path | str = "data",
        command: Sequence[str] | None = None,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 300.0,
        stable_after_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        watch: FleetWatch | None = None,
    ) -> None:
        self.database_url = database_url
        self.bot_name = bot_name
        self.data_dir = Path(data_dir).resolve()
        self.command = list(command or [sys.executable, "-m", "bot", "run"])
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self._clock = clock
        self.watch = watch  # told the bot's state at each tick: a crash or stale heartbeat alerts
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._wanted = False  # the operator wants it running: restart it when it crashes
        self._failures = 0
        self._started_at = 0.0
        self._next_restart_at: float | None = None
        self._watchdog: threading.Thread | None = None
        self._stop_watch = threading.Event()
        self.last_exit: str | None = None  # why the last process ended, for the sidebar
        digest = hashlib.sha256(f"{database_url}|{bot_name}".encode()).hexdigest()[:10]
        self.pid_file = self.data_dir / f"bot-{bot_name}-{digest}.pid"
        self.log_file = self.data_dir / "bot.log"

    # --- the process

    def pid(self) -> int | None:
        """The bot's pid if it is alive (our child, or the one the pid file names)."""
        with self._lock:
            if self._proc is not None:
                if self._proc.poll() is None:
                    return self._proc.pid
                return None
            try:
                pid = int(json.loads(self.pid_file.read_text())["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
            return pid if pid_alive(pid) and looks_like_bot(pid) else None

    def start(self) -> int:
        """Start the bot unless one is already up for this database; returns its pid."""
        with self._lock:
            self._wanted = True
            self._next_restart_at = None
            existing = self.pid() or self._heartbeat_pid()
            if existing is not None:
                return existing
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # the console may run from any folder: make ``-m bot`` importable, keep the cwd
            # so a relative DATABASE_URL means the same file to the bot and the console
            path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))
                                   if p)
            env = {**os.environ, "DATABASE_URL": self.database_url, "BOT_NAME": self.bot_name,
                   "PYTHONPATH": path}
            with open(self.log_file, "ab") as out:
                self._proc = subprocess.Popen(
                    self.command, env=env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                    cwd=Path.cwd(),
                )
            self._started_at = self._clock()
            self.pid_file.write_text(
                json.dumps({"pid": self._proc.pid, "database_url_sha": self.pid_file.stem,
                            "started_at": datetime.now(UTC).isoformat()})
            )
            log.info("started bot pid %s", self._proc.pid)
            return self._proc.pid

    def stop(self, timeout_s: float = 15.0) -> bool:
        """SIGTERM the bot's process group, SIGKILL after ``timeout_s``; no restart after."""
        with self._lock:
            self._wanted = False
            self._next_restart_at = None
            pid = self.pid() or self._heartbeat_pid()
            if pid is None:
                self._forget()
                return False
            self._signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.1)
            if self._alive(pid):
                log.warning("bot pid %s ignored SIGTERM; killing", pid)
                self._signal(pid, signal.SIGKILL)
            self._forget()
            return True

    def restart(self, timeout_s: float = 15.0) -> int:
        with self._lock:
            self.stop(timeout_s)
            self._failures = 0
            return self.start()

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return pid_alive(pid)

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            if self._proc is not None and self._proc.pid == pid:
                os.killpg(pid, sig)  # our child leads its own session: take helpers too
            elif looks_like_bot(pid):
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _forget(self) -> None:
        if self._proc is not None:
            self._proc.poll()
        self._proc = None
        self.pid_file.unlink(missing_ok=True)

    def _heartbeat_pid(self) -> int | None:
        """A bot started elsewhere (CLI) on this host that still beats counts as running."""
        row = self.heartbeat()
        if row is None or row.get("host") != socket.gethostname() or not row.get("pid"):
            return None
        pid = int(row["pid"])
        if row.get("state") in LIVE_STATES and pid_alive(pid) and looks_like_bot(pid):
            return pid
        return None

    # --- the state

    def heartbeat(self) -> dict | None:
        factory = session_factory(engine_for(self.database_url))
        with factory() as db:
            return read_heartbeat(db, self.bot_name)

    def state(self, now: datetime | None = None) -> BotState:
        row = self.heartbeat()
        state = classify(row, now or datetime.now(UTC), process_alive=self._process_alive(row))
        mine, code = self.pid(), self.exit_code()
        if mine is not None and row is not None and row.get("pid") not in (None, mine):
            # a restarted child has not beaten yet; the row still names the dead one
            state = replace(state, state="starting", pid=mine, process_alive=True)
        elif (state.state == "stopped" and code not in (None, 0)
              and not self._stop_carried_out(row)):
            # our child died before (or without) writing a heartbeat: say so, with its log
            state = replace(state, state="crashed", last_error=self.log_tail())
        return state

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _process_alive(self, row: dict | None) -> bool | None:
        if self.pid() is not None:
            return True
        if self._proc is not None:
            return False  # our child exited
        if row is None or not row.get("pid"):
            return None if row is not None else False
        if row.get("host") and row.get("host") != socket.gethostname():
            return None
        return pid_alive(int(row["pid"]))

    def _stop_carried_out(self, row: dict | None) -> bool:
        """Whether the heartbeat row says the bot carried out a STOP: stopped, and written by
        our child when there is one (not by a bot from before it, which would say the same
        of a child that died before its first beat)."""
        if row is None or row.get("state") != "stopped":
            return False
        return self._proc is None or row.get("pid") == self._proc.pid

    def exit_code(self) -> int | None:
        with self._lock:
            return None if self._proc is None else self._proc.poll()

    # --- supervision

    def ensure_running(self) -> int | None:
        """Auto-start: start the bot only when nothing is up for this database."""
        current = self.state()
        if current.state in RUNNING_STATES or (
            current.state == "stale" and current.process_alive
        ):
            self._wanted = True
            return current.pid or self.pid()
        return self.start()

    def tick(self) -> str:
        """One watchdog step; returns what it did (for logs and tests).

        A non-zero exit or a 'crashed' heartbeat while the operator wants the bot up is
        retried after base × 2^failures seconds (capped); a run that stayed up for
        ``stable_after_s`` resets the count. Exit code 0 is a deliberate stop: left alone, as
        is a heartbeat row our child left stopped (it carried out a STOP, then was killed).
        """
        with self._lock:
            if not self._wanted:
                return "idle"
            if self.watch is not None:
                self.watch.observe(self.bot_name, self.state())
            now = self._clock()
            code = self.exit_code()
            alive = self.pid() is not None or self._heartbeat_pid() is not None
            if alive:
                if self._failures and now - self._started_at >= self.stable_after_s:
                    self._failures = 0
                return "ok"
            if code == 0 or code in NO_RESTART_EXIT_CODES:
                self._wanted = False
                self._forget()
                reason = NO_RESTART_EXIT_CODES.get(code, "stopped cleanly")
                log.warning("bot exited with %s (%s); not restarting", code, reason)
                self.last_exit = f"exit {code}: {reason} (see {self.log_file})"
                return "exited"
            if self._stop_carried_out(self.heartbeat()):
                # a bot not started here leaves no exit code, and one killed after its STOP
                # a crash's: its heartbeat row tells the STOP, which it commits
                self._wanted = False
                self.last_exit = ("stopped cleanly (a process this console did not start)"
                                  if self._proc is None else f"stopped by its STOP command, "
                                  f"then ended with exit {code} (see {self.log_file})")
                self._forget()
                log.warning("bot %s stopped; not restarting", self.bot_name)
                return "exited"
            if self._next_restart_at is None:
                self.last_exit = f"exit {code}: crashed (see {self.log_file})"
                delay = min(self.backoff_base_s * 2**self._failures, self.backoff_max_s)
                self._failures += 1
                self._next_restart_at = now + delay
                log.warning("bot exited with %s; restarting in %.0fs", code, delay)
                return f"crashed: restart in {delay:.0f}s"
            if now < self._next_restart_at:
                return "waiting"
            self._proc = None
            self.start()
            return "restarted"

    def supervise(self, interval_s: float = 5.0) -> None:
        """Run ``tick`` in a daemon thread (idempotent: one watchdog per supervisor)."""
        with self._lock:
            if self._watchdog is not None and self._watchdog.is_alive():
                return
            self._stop_watch.clear()
            self._watchdog = threading.Thread(
                target=self._watch, args=(interval_s,), name="bot-watchdog", daemon=True
            )
            self._watchdog.start()

    def stop_supervising(self) -> None:
        self._stop_watch.set()

    def _watch(self, interval_s: float) -> None:
        while not self._stop_watch.wait(interval_s):
            try:
                self.tick()
            except Exception:  # the watchdog must outlive a bad tick (e.g. DB locked)
                log.exception("bot watchdog tick failed")

    @property
    def restart_pending_in(self) -> timedelta | None:
        if self._next_restart_at is None:
            return None
        return timedelta(seconds=max(0.0, self._next_restart_at - self._clock()))
