"""The bot as an OS process: commands end to end, one bot per name, clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from db.engine import make_engine, session_factory
from db.models import BotStatus, Command, Position, Trade
from tests.conftest import ROOT, candle_file
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # runs the bot as an OS process


def bot_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    env.update({"DATABASE_URL": db_url, "FEED": f"replay:{candle_file('BTC_USDT-5m.csv')}",
                "LOOP_INTERVAL_SECONDS": "0.3", "LOG_LEVEL": "WARNING", **extra})
    return env


@pytest.fixture
def bot(sqlite_url: str) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT,
                               env=bot_env(sqlite_url), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def queue(db_url: str, *words: str) -> None:
    subprocess.run([sys.executable, "-m", "bot", "command", *words, "--db", db_url],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)


def command_status(factory, name: str) -> Command | None:
    with factory() as db:
        return db.scalars(select(Command).where(Command.command == name)).first()


def test_trades_then_close_all_then_stop(sqlite_url: str, bot: subprocess.Popen) -> None:
    factory = session_factory(make_engine(sqlite_url))

    def traded() -> bool:
        with factory() as db:
            return db.scalar(select(Trade.id).limit(1)) is not None

    wait_for(lambda: bot.poll() is not None or traded(), timeout=120)
    assert bot.poll() is None, bot.stderr.read()
    queue(sqlite_url, "close-all")
    done = wait_for(lambda: (c := command_status(factory, "close-all")) and
                    c.status in ("done", "failed") and c)
    assert done.status == "done", done.result
    assert done.executed_at >= done.created_at
    with factory() as db:
        assert db.scalars(select(Position)).all() == []

    def status() -> BotStatus:
        with factory() as db:
            return db.scalars(select(BotStatus)).one()

    # the heartbeat that says so follows the command's row
    assert wait_for(lambda: status().paused) and status().pid == bot.pid
    queue(sqlite_url, "stop")
    assert bot.wait(timeout=30) == 0
    with factory() as db:
        assert db.scalars(select(BotStatus)).one().state == "stopped"
    audit = subprocess.run([sys.executable, "-m", "bot", "audit", "--db", sqlite_url, "--json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0 and json.loads(audit.stdout)["ok"], audit.stdout


def test_a_second_bot_with_the_same_name_is_refused(sqlite_url: str, bot) -> None:
    factory = session_factory(make_engine(sqlite_url))

    def running() -> bool:
        with factory() as db:
            row = db.scalars(select(BotStatus)).first()
            return row is not None and row.state in ("running", "paused")

    wait_for(running)
    second = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=ROOT,
                            env=bot_env(sqlite_url), capture_output=True, text=True, timeout=60)
    assert second.returncode == 3
    assert "already running" in second.stderr and f"pid {bot.pid}" in second.stderr
    bot.kill()
    bot.wait()
    # The lock dies with its holder, even on SIGKILL: the name can be taken again at once.
    third = subprocess.Popen([sys.executable, "-m", "bot", "run", "--iterations", "2"], cwd=ROOT,
                             env=bot_env(sqlite_url), stderr=subprocess.PIPE, text=True)
    assert third.wait(timeout=60) == 0, third.stderr.read()
