"""A replay on a database where a bot of its ``BOT_NAME`` trades live: under that name the
replay would be the bot to the commands table and the heartbeat, so the live bot's PAUSE or
CLOSE-ALL would be carried out on the replay's paper account and the live position left
open. The replay answers to its run name instead, beside the bot, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.model.vocabulary import CommandKind
from bot.replay import ReplayArgs, run_replay
from db.bots import bot_names
from db.commands import enqueue_command
from db.heartbeat import heartbeat
from db.models import Command, Session
from tests.loop_harness import make_runtime, step
from tests.test_kill import cut_file


def test_a_replay_on_a_live_bots_database_leaves_the_bot_its_commands(
        db_url: str, tmp_path: Path) -> None:
    candles = cut_file(tmp_path, 260)
    live = make_runtime(db_url, [candles], kind="live", run_name="default")
    step(live)
    with live.db() as db:
        close_all = enqueue_command(db, CommandKind.CLOSE_ALL, None, "default")
        beat_before = heartbeat(db, "default")
    summary = run_replay(ReplayArgs([candles], db_url), progress=False, max_steps=3)
    assert summary["candles"] == 3
    with live.db() as db:
        assert db.get(Command, close_all).status == "pending", "the replay took the command"
        assert heartbeat(db, "default") == beat_before, "the replay beat as the live bot"
        assert db.scalar(select(func.count()).select_from(Session)
                         .where(Session.kind == "replay")) == 1
        assert bot_names(db) == ["default"]
    step(live)
    with live.db() as db:
        assert db.get(Command, close_all).status == "done", "the live bot obeys its own command"
