"""Telegram control against a local stand-in of the Bot API (``tests/telegram_standin.py``).

python-telegram-bot, the database and the bot loop are all real: a /pause from an allowed
chat becomes a ``commands`` row that a running bot carries out, the same from any other chat
does nothing, and /closeall and /stop queue nothing until confirmed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.config import load_settings
from bot.loop import run_forever
from bot.telegram import CONFIRM_SECONDS, Desk, build_application, desk_for, start_background
from db.bots import register_bot
from db.engine import make_engine, session_factory
from db.heartbeat import beat
from db.migrate import upgrade
from db.models import Bot, Command, Session
from tests.conftest import ROOT, candle_file
from tests.loop_harness import make_runtime
from tests.telegram_standin import BotApiStandIn
from tests.waiting import wait_for

TOKEN = "7012345678:AAH-test-token-never-logged-0123456789"
OPERATOR, STRANGER = 123456789, 555000111
SECRET = "exchange-key-never-shown-4242"


def commands_of(url: str) -> list[tuple[str, str, str]]:
    """(bot, command, status) of every queued command, oldest first."""
    with session_factory(make_engine(url))() as db:
        rows = db.execute(select(Bot.name, Command.command, Command.status)
                          .join(Bot, Bot.id == Command.bot_id).order_by(Command.id)).all()
    return [tuple(r) for r in rows]


@contextmanager
def telegram_running(url: str, api: BotApiStandIn) -> Iterator[Desk]:
    """The Telegram side polling ``api`` on a thread of its own until the block ends."""
    settings = load_settings(DATABASE_URL=url, TELEGRAM_BOT_TOKEN=TOKEN,
                             TELEGRAM_CHAT_IDS=str(OPERATOR), TELEGRAM_API_BASE_URL=api.base_url)
    desk = desk_for(settings)
    background = start_background(build_application(settings, desk))
    try:
        yield desk
    finally:
        background.close()
        assert not background.thread.is_alive()


def reply(api: BotApiStandIn, chat: int, number: int,
          process: subprocess.Popen | None = None) -> dict:
    """The ``number``-th message (1-based) sent to ``chat``, once it is there (or an error
    as soon as ``process``, the Telegram side when it runs as a process, has ended)."""
    def sent() -> dict | None:
        assert process is None or process.poll() is None, process.communicate()
        return (api.replies_to(chat)[number - 1:number] or [None])[0]
    return wait_for(sent, every=0.05)


@pytest.mark.slow
def test_pause_from_an_allowed_chat_pauses_the_bot_and_other_chats_do_nothing(
        sqlite_url, caplog) -> None:
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], LOOP_INTERVAL_SECONDS=3600)
    loop = threading.Thread(target=run_forever, args=(rt,), daemon=True)
    loop.start()
    try:
        with BotApiStandIn(TOKEN) as api, telegram_running(sqlite_url, api):
            api.say(STRANGER, "/pause")
            api.say(OPERATOR, "/status")  # updates are handled in order: this comes after
            assert "default: " in reply(api, OPERATOR, 1)["text"]
            assert api.replies_to(STRANGER) == [] and commands_of(sqlite_url) == []
            assert f"ignored an update from chat {STRANGER}" in caplog.text

            api.say(OPERATOR, "/sell everything")  # not a command: the help, nothing queued
            assert "/closeall [bot]" in reply(api, OPERATOR, 2)["text"]
            api.say(OPERATOR, "/pause")
            assert "Queued pause for default" in reply(api, OPERATOR, 3)["text"]
            wait_for(lambda: commands_of(sqlite_url) == [("default", "pause", "done")])
            assert rt.paused

            # close-all: a question with buttons, nothing queued until Yes is pressed
            api.say(OPERATOR, "/closeall")
            question = reply(api, OPERATOR, 4)
            assert "Close every position" in question["text"]
            assert len(commands_of(sqlite_url)) == 1
            buttons = api.buttons_of(question)
            yes = buttons["Yes, close-all default"]
            api.press(STRANGER, yes)  # a stranger's press is dropped like their messages
            api.press(OPERATOR, yes)
            assert "Queued close-all" in reply(api, OPERATOR, 5)["text"]
            wait_for(lambda: commands_of(sqlite_url)[1:] == [("default", "close-all", "done")])

            # stop: "confirm" alone confirms nothing; after the question it does
            api.say(OPERATOR, "/stop confirm")
            assert "Nothing to confirm" in reply(api, OPERATOR, 6)["text"]
            api.say(OPERATOR, "/stop")
            assert "Stop default" in reply(api, OPERATOR, 7)["text"]
            api.say(OPERATOR, "/stop confirm")
            assert "Queued stop" in reply(api, OPERATOR, 8)["text"]
            loop.join(30)
            assert not loop.is_alive()
            assert commands_of(sqlite_url)[-1] == ("default", "stop", "done")
            assert api.replies_to(STRANGER) == []
    finally:
        rt.stop_requested = True
        loop.join(10)


def _registered(url: str, name: str = "default") -> None:
    """A database with one bot in it (registered, as a bot's first beat registers it)."""
    upgrade(url)
    with session_factory(make_engine(url))() as db:
        register_bot(db, name, datetime.now(UTC))
        db.commit()


@pytest.mark.slow
def test_a_command_addressed_to_another_bot_is_not_ours(sqlite_url) -> None:
    _registered(sqlite_url)
    with BotApiStandIn(TOKEN) as api, telegram_running(sqlite_url, api):
        api.say(OPERATOR, "/pause@someone_else_bot")
        api.say(OPERATOR, "/status@TradeDesk_Test_Bot")  # ours, whatever the case
        assert "default: " in reply(api, OPERATOR, 1)["text"]
        api.say(OPERATOR, "/pause@tradedesk_test_bot")
        assert "Queued pause for default" in reply(api, OPERATOR, 2)["text"]
    assert commands_of(sqlite_url) == [("default", "pause", "pending")]


@pytest.mark.slow
def test_telegram_control_waits_for_a_bot_api_unreachable_at_its_start(
        sqlite_url, caplog) -> None:
    _registered(sqlite_url)
    with socket.socket() as probe:  # a free port, closed: nothing answers there yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(DATABASE_URL=sqlite_url, TELEGRAM_BOT_TOKEN=TOKEN,
                             TELEGRAM_CHAT_IDS=str(OPERATOR),
                             TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{port}")
    background = start_background(build_application(settings, desk_for(settings)))
    try:
        wait_for(lambda: "Telegram Bot API unreachable" in caplog.text, every=0.05)
        with BotApiStandIn(TOKEN, port) as api:
            api.say(OPERATOR, "/status")
            assert "default: " in reply(api, OPERATOR, 1)["text"]
            background.close()
        assert not background.thread.is_alive()
    finally:
        background.close()


def test_a_confirmation_expires_and_a_named_bot_is_needed_among_several(db_url) -> None:
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    with sessions() as db:
        for name in ("alpha", "beta"):
            register_bot(db, name, datetime.now(UTC))
        db.commit()
        beat(db, "beta", datetime.now(UTC), last_error=f"venue refused {SECRET}")
    clock = [0.0]
    desk = Desk(sessions, frozenset({OPERATOR}), (SECRET,), clock=lambda: clock[0])
    assert "beta: " in (beta := desk.answer(OPERATOR, "status", ["beta"]).text)
    assert "error: venue refused ***" in beta and SECRET not in beta

    ambiguous = desk.answer(OPERATOR, "pause", [])
    assert "alpha, beta" in ambiguous.text and commands_of(db_url) == []
    assert "no bot named 'gamma'" in desk.answer(OPERATOR, "pause", ["gamma"]).text
    assert "alpha" in desk.answer(OPERATOR, "status", []).text  # the fleet, one line a bot

    question = desk.answer(OPERATOR, "closeall", ["beta"])
    desk.answer(OPERATOR, "stop", ["alpha"])
    clock[0] += CONFIRM_SECONDS + 1
    assert "Too late" in desk.press(OPERATOR, question.buttons[0][1])
    assert "Nothing to confirm" in desk.answer(OPERATOR, "stop", ["alpha", "confirm"]).text
    assert commands_of(db_url) == []

    desk.answer(OPERATOR, "closeall", ["beta"])
    assert "Nothing to confirm" in desk.answer(OPERATOR, "closeall", ["alpha", "confirm"]).text
    assert "Queued close-all for beta" in desk.answer(OPERATOR, "closeall", ["confirm", "beta"]).text
    assert "Queued pause for alpha" in desk.answer(OPERATOR, "pause", ["alpha"]).text
    assert commands_of(db_url) == [("beta", "close-all", "pending"),
                                       ("alpha", "pause", "pending")]


def test_pnl_is_of_todays_session_of_the_bot(sqlite_url) -> None:
    """/pnl says "today's figures": a bot whose newest session is an earlier day has none
    today, and says so with that day, instead of giving the old day's figures as today's.
    Today is the bot's trading day in its SESSION_TIMEZONE (20:00 UTC is already the 26th
    in Tokyo)."""
    now = datetime(2026, 11, 25, 20, tzinfo=UTC)
    sessions = session_factory(make_engine(sqlite_url))
    with sessions() as db:
        bot_id = register_bot(db, "alpha", now).id
        db.add(Session(date=date(2026, 11, 24), kind="live", run_name="alpha", bot_id=bot_id,
                       mode="PAPER", starting_balance=1000.0, created_at=now))
        db.commit()
    desk = Desk(sessions, frozenset({OPERATOR}), now=lambda: now)
    stale = desk.answer(OPERATOR, "pnl", ["alpha"]).text
    assert stale == "alpha has no session today (its last day: 2026-11-24).", stale
    with sessions() as db:
        db.add(Session(date=date(2026, 11, 25), kind="live", run_name="alpha", bot_id=bot_id,
                       mode="PAPER", starting_balance=1000.0, created_at=now))
        db.commit()
    today = desk.answer(OPERATOR, "pnl", ["alpha"]).text
    assert today.startswith("alpha · 2026-11-25 · live/alpha · PAPER"), today
    assert "equity 1,000.00" in today
    with sessions() as db:  # a bot trading in Tokyo: its 25th is yesterday already
        db.execute(update(Session).where(Session.date == date(2026, 11, 25))
                   .values(settings=json.dumps({"session_timezone": "Asia/Tokyo"})))
        db.commit()
    tokyo = desk.answer(OPERATOR, "pnl", ["alpha"]).text
    assert tokyo == "alpha has no session today (its last day: 2026-11-25).", tokyo


@pytest.mark.slow
def test_the_telegram_process_queues_for_the_operator_and_never_logs_its_token(
        sqlite_url, tmp_path: Path) -> None:
    upgrade(sqlite_url)
    with session_factory(make_engine(sqlite_url))() as db:
        register_bot(db, "desk-1", datetime.now(UTC))
        db.commit()
    with BotApiStandIn(TOKEN) as api:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": f"{OPERATOR},42",
               "TELEGRAM_API_BASE_URL": api.base_url, "LOG_LEVEL": "DEBUG"}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "telegram", "--db", sqlite_url], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            api.say(STRANGER, "/pause desk-1")
            api.say(OPERATOR, "/pause desk-1")  # the migration registered 'default' too
            assert "Queued pause for desk-1" in reply(api, OPERATOR, 1, process)["text"]
            assert commands_of(sqlite_url) == [("desk-1", "pause", "pending")]
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"ignored an update from chat {STRANGER}" in err
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err


@pytest.mark.slow
def test_a_bot_started_with_telegram_pauses_and_stops_from_the_operators_chat(
        sqlite_url) -> None:
    with BotApiStandIn(TOKEN) as api:
        env = {**os.environ, "DATABASE_URL": sqlite_url,
               "FEED": f"replay:{candle_file('BTC_USDT-5m.csv')}", "LOOP_INTERVAL_SECONDS": "0.3",
               "TELEGRAM_WITH_BOT": "true", "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_CHAT_IDS": str(OPERATOR), "TELEGRAM_API_BASE_URL": api.base_url}
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            api.say(STRANGER, "/stop")
            api.say(OPERATOR, "/pause")
            assert "Queued pause for default" in reply(api, OPERATOR, 1, process)["text"]
            wait_for(lambda: commands_of(sqlite_url) == [("default", "pause", "done")])
            api.say(OPERATOR, "/stop")
            api.press(OPERATOR, api.buttons_of(reply(api, OPERATOR, 2, process))["Yes, stop default"])
            assert "Queued stop" in reply(api, OPERATOR, 3, process)["text"]
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert commands_of(sqlite_url) == [("default", "pause", "done"), ("default", "stop", "done")]
    assert api.replies_to(STRANGER) == [] and TOKEN not in err


def test_telegram_without_a_token_or_chats_names_the_setting(sqlite_url, monkeypatch,
                                                              capsys) -> None:
    from bot.__main__ import main

    assert main(["telegram", "--db", sqlite_url]) == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert main(["telegram", "--db", sqlite_url]) == 2
    assert "TELEGRAM_CHAT_IDS" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_WITH_BOT", "true")  # refused before the bot starts
    assert main(["run", "--db", sqlite_url]) == 2
    assert "TELEGRAM_CHAT_IDS" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "12,abc")
    assert main(["telegram", "--db", sqlite_url]) == 2
    assert "invalid setting TELEGRAM_CHAT_IDS" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", "12,-1001234567890")  # a group's id is negative
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "api.telegram.org")
    assert main(["telegram", "--db", sqlite_url]) == 2
    assert "invalid setting TELEGRAM_API_BASE_URL: 'api.telegram.org' is not an http(s) URL" \
        in capsys.readouterr().err


def test_a_token_the_bot_api_rejects_is_named_and_never_shown(sqlite_url, monkeypatch,
                                                              capsys, caplog) -> None:
    from bot.__main__ import main

    with BotApiStandIn("7000000001:AAH-the-token-the-api-knows-000000") as api:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_CHAT_IDS", str(OPERATOR))
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        assert main(["telegram", "--db", sqlite_url]) == 2
        err = capsys.readouterr().err
        assert "TELEGRAM_BOT_TOKEN" in err and "rejected by the Bot API" in err
        assert "Traceback" not in err

        # beside a bot (TELEGRAM_WITH_BOT) the same refusal is logged and ends only Telegram
        settings = load_settings(DATABASE_URL=sqlite_url)
        background = start_background(build_application(settings, desk_for(settings)))
        background.thread.join(60)
        assert not background.thread.is_alive()
    assert "TELEGRAM_BOT_TOKEN" in caplog.text and "rejected by the Bot API" in caplog.text
    assert "Traceback" not in caplog.text
    for shown in (err, caplog.text):
        assert TOKEN not in shown and TOKEN.split(":")[1] not in shown


def test_a_database_that_fails_is_answered_in_words(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path}/empty.db"  # no schema: every query fails
    desk = Desk(session_factory(make_engine(empty)), frozenset({OPERATOR}))
    for command in ("status", "pause", "pnl"):
        assert desk.answer(OPERATOR, command, []).text.startswith("Database error (")
