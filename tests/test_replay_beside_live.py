"""A replay on a database where a bot of its name trades live: the replay would be that bot
to the commands table and the heartbeat (it obeys its bot name's commands, and beats as it),
so the live bot's PAUSE or CLOSE-ALL would be carried out on the replay's paper account and
the live position left open. The replay is refused, naming the bot, before it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.config import ConfigError
from bot.model.vocabulary import CommandKind
from bot.replay import ReplayArgs, run_replay
from db.commands import enqueue_command
from db.heartbeat import heartbeat
from db.models import Command, Session
from tests.loop_harness import make_runtime, step
from tests.test_kill import cut_file


def test_a_replay_on_a_live_bots_database_is_refused_and_leaves_its_commands(
        db_url: str, tmp_path: Path) -> None:
    candles = cut_file(tmp_path, 260)
    live = make_runtime(db_url, [candles], kind="live", run_name="default")
    step(live)
    with live.db() as db:
        close_all = enqueue_command(db, CommandKind.CLOSE_ALL, None, "default")
        beat_before = heartbeat(db, "default")
    with pytest.raises(ConfigError, match="'default'.*trades live on this database"):
        run_replay(ReplayArgs([candles], db_url), progress=False, max_steps=3)
    with live.db() as db:
        assert db.get(Command, close_all).status == "pending", "the replay took the command"
        assert heartbeat(db, "default") == beat_before, "the replay beat as the live bot"
        assert db.scalar(select(func.count()).select_from(Session)
                         .where(Session.kind == "replay")) == 0
    step(live)
    with live.db() as db:
        assert db.get(Command, close_all).status == "done", "the live bot obeys its own command"
