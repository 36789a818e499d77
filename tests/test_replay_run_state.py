"""Replays share their database's bot name (``BOT_NAME``, by default ``default``), and so its
heartbeat row: a run paused by a command (a close-all pauses too) left the row paused, and
the next run on that database, of other candles, started paused and traded nothing. A run's
pause is its own: a new run starts unpaused, and its summary is the one it has alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model.vocabulary import CommandKind
from bot.replay import ReplayArgs, run_replay
from bot.runtime import Runtime
from db.commands import enqueue_command
from tests.conftest import candle_file
from tests.test_kill import cut_file

pytestmark = pytest.mark.slow
SUMMARY_KEYS = ("trades", "fingerprint", "net_pnl", "candles")


def _later_candles(folder: Path) -> Path:
    """400 candles of the shared file from its 2,000th: another stretch, another run."""
    folder.mkdir()
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)
    path = folder / "BTC_USDT-5m.csv"
    path.write_text(lines[0] + "".join(lines[2001:2401]))
    return path


@pytest.mark.parametrize("kind", [CommandKind.PAUSE, CommandKind.CLOSE_ALL])
def test_a_replay_paused_by_a_command_leaves_the_next_run_unpaused(tmp_path, kind) -> None:
    first, later = cut_file(tmp_path, 300), _later_candles(tmp_path / "later")
    alone = run_replay(ReplayArgs([later], f"sqlite:///{tmp_path / 'alone.db'}"),
                       progress=False)
    assert alone["trades"] > 0, "the later stretch must trade for the pause to show"

    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    steps: list[int] = []

    def pause_at_step_3(rt: Runtime) -> None:
        steps.append(1)
        if len(steps) == 3:
            with rt.db() as db:
                enqueue_command(db, kind, None, rt.settings.bot_name)

    run_replay(ReplayArgs([first], shared), progress=False, observer=pause_at_step_3)
    after = run_replay(ReplayArgs([later], shared), progress=False)
    assert {k: after[k] for k in SUMMARY_KEYS} == {k: alone[k] for k in SUMMARY_KEYS}
