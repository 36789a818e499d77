"""Notifications from the bot as an OS process on the live paper venue (synthetic market):
a fill and a plan close reach a local server; an unreachable URL is counted on the
heartbeat, and its tokens reach neither the logs nor the database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from db.engine import make_engine, session_factory
from db.models import BotStatus, Command
from tests.conftest import ROOT
from tests.notify_server import closed_port, notify_server
from tests.test_secrets import database_text
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # runs the bot as an OS process


@contextmanager
def running_bot(tmp_path, db_url: str, **extra: str) -> Iterator[subprocess.Popen]:
    """``python -m bot run`` from an empty folder (no developer .env), logs to files."""
    env = {**os.environ, "DATABASE_URL": db_url, "LOOP_INTERVAL_SECONDS": "0.3",
           "NOTIFY_EVENTS": "all", "NOTIFY_MIN_INTERVAL_SECONDS": "0",
           "PYTHONPATH": str(ROOT), **extra}
    env.pop("FEED", None)  # the default: the synthetic market, in real time
    with open(tmp_path / "out.log", "w") as out, open(tmp_path / "err.log", "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
                                   stdout=out, stderr=err)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def stop(db_url: str, process: subprocess.Popen) -> None:
    subprocess.run([sys.executable, "-m", "bot", "command", "stop", "--db", db_url],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    assert process.wait(timeout=60) == 0


def test_a_paper_bot_notifies_a_fill_and_a_plan_close(tmp_path, sqlite_url) -> None:
    factory = session_factory(make_engine(sqlite_url))
    with notify_server() as (url, received), running_bot(tmp_path, sqlite_url,
                                                         NOTIFY_URLS=url) as bot:
        wait_for(lambda: bot.poll() is not None or received.containing(
            "[PAPER] default: bought", "BTC/USDT at", "fee"), timeout=120)
        assert bot.poll() is None, (tmp_path / "err.log").read_text()[-3000:]
        subprocess.run([sys.executable, "-m", "bot", "command", "close-all", "--db", sqlite_url],
                       cwd=ROOT, check=True, capture_output=True, timeout=60)
        wait_for(lambda: received.containing("[PAPER] default: plan", "closed (close-all by "
                                             "operator)"))
        wait_for(lambda: received.containing("command close-all done"))
        stop(sqlite_url, bot)
    with factory() as db:
        assert db.scalars(select(Command.status)).all() == ["done", "done"]
        assert db.scalars(select(BotStatus.notify_failures)).one() == 0


def test_an_unreachable_url_is_counted_and_its_tokens_stay_secret(tmp_path, sqlite_url) -> None:
    user, token, path = (f"{word}-{uuid.uuid4().hex[:10]}" for word in ("usr", "tok", "hook"))
    url = f"json://{user}:{token}@127.0.0.1:{closed_port()}/{path}?sig={token}x"
    factory = session_factory(make_engine(sqlite_url))

    def failures() -> int:
        with factory() as db:
            return db.scalar(select(BotStatus.notify_failures)) or 0

    with running_bot(tmp_path, sqlite_url, NOTIFY_URLS=url, LOG_LEVEL="DEBUG") as bot:
        wait_for(lambda: bot.poll() is not None or failures() >= 1, timeout=120)
        assert bot.poll() is None, (tmp_path / "err.log").read_text()[-3000:]
        stop(sqlite_url, bot)
    logs = (tmp_path / "out.log").read_text() + (tmp_path / "err.log").read_text()
    assert "notification failed" in logs and "tradedesk.loop" in logs  # the logs were read
    stored = database_text(sqlite_url)
    assert "BTC/USDT" in stored
    for secret in (user, token, path):
        assert secret not in logs, f"{secret} in the bot's logs"
        assert secret not in stored, f"{secret} in the database"
