"""Replays started from the console: candle files to pick, the process, its progress.

A replay runs as ``python -m bot replay ... --json`` in its own detached process, as
``bot.supervisor`` runs the bot: a script rerun or a console restart must not kill a
two-minute replay, and the console must not import the venue or the engine. The processes
this server started are kept in one registry so every browser tab sees them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from bot.supervisor import PROJECT_ROOT

SHARED = Path(os.environ.get("TRADEDESK_SHARED", PROJECT_ROOT.parent / "shared"))
CANDLE_DIR = SHARED / "data" / "candles"
DEFAULT_REPLAY_DB = Path("data") / "replays.db"  # the CLI's default, relative to the cwd


class PathRefused(ValueError):
    """A path the Replays page may not use; the message says which folders it may."""


def allowed_folders(extra: list[str]) -> list[Path]:
    """The console's data folder and the folders of the REPLAY_FOLDERS setting, resolved."""
    return [Path(folder).expanduser().resolve() for folder in ["data", *extra]]


def confined(path_text: str | Path, folders: list[Path]) -> Path:
    """The path, resolved (symlinks and ``..`` followed), if it lies in one of ``folders``.

    The check comes before anything looks at the file, so a refusal says nothing about
    whether it exists.
    """
    path = Path(path_text).expanduser().resolve()
    if any(path.is_relative_to(folder) for folder in folders):
        return path
    raise PathRefused(f"{path_text} is outside the folders replays may use "
                      f"({', '.join(map(str, folders))}); add its folder to the REPLAY_FOLDERS "
                      "setting to allow it")


def sqlite_url(path: Path, *, read_only: bool = False) -> str:
    """A SQLite URL for a file; read-only opens can never create or change it."""
    absolute = path.resolve()
    return f"sqlite:///file:{absolute}?mode=ro&uri=true" if read_only else f"sqlite:///{absolute}"


def candle_files() -> list[Path]:
    """The shared candle files offered in the form (none when shared/ is absent)."""
    return sorted(CANDLE_DIR.glob("*.csv")) if CANDLE_DIR.is_dir() else []


@cache
def _span(path: str, size: int, mtime: float) -> tuple[int, int]:
    del size, mtime  # part of the cache key only: an edited file is read again
    first, last = 0, 0
    with open(path, "rb") as handle:
        next(handle, None)  # header
        for line in handle:
            if not line.strip():
                continue
            stamp = int(float(line.split(b",", 1)[0]))
            first = first or stamp
            last = stamp
    return first, last


def candle_span(path: Path) -> tuple[int, int]:
    """A candle file's first and last timestamps (ms), read once per version of the file."""
    stat = path.stat()
    return _span(str(path.resolve()), stat.st_size, stat.st_mtime)


@dataclass
class Launched:
    """One replay process this console started."""

    name: str
    paths: list[Path]
    db_path: Path
    balance: float
    proc: subprocess.Popen
    log: Path
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Launcher:
    """The replays started by this console server, newest first."""

    def __init__(self, data_dir: Path | str = "data") -> None:
        self.data_dir = Path(data_dir)  # resolved at each start: relative to the cwd then
        self._lock = threading.Lock()
        self.runs: list[Launched] = []

    def start(self, paths: list[Path], db_path: Path, balance: float,
              flags: Sequence[str] = ()) -> Launched:
        """Launch ``python -m bot replay`` detached, its output in data/replay-<name>.log;
        ``flags`` are its further options (engine, dates, fees, risk and entry settings)."""
        paths = [p.resolve() for p in paths]
        name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{paths[0].stem}"
        data_dir = self.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        log = data_dir / f"replay-{name}.log"
        command = [sys.executable, "-m", "bot", "replay",
                   "--candles", ",".join(str(p) for p in paths),
                   "--db", sqlite_url(db_path), "--balance", repr(float(balance)), *flags, "--json"]
        path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                command, env={**os.environ, "PYTHONPATH": path}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                close_fds=True, cwd=Path.cwd(),
            )
        run = Launched(name=name, paths=paths, db_path=db_path.resolve(), balance=balance,
                       proc=proc, log=log)
        with self._lock:
            self.runs.insert(0, run)
            del self.runs[20:]
        return run
