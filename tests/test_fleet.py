"""Several bots on one database: prefixes, addressed commands, NOTIFY, the fleet listing,
and three real bot processes side by side on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from bot.config import load_settings
from bot.fleet import fleet_states, order_prefix, prefix_for, totals
from bot.notify import CommandListener
from bot.telegram import _fleet_text
from db.bots import UnknownBot, register_bot
from db.commands import enqueue_command, enqueue_for_all, has_pending, pending_commands
from db.engine import make_engine, session_factory
from db.heartbeat import beat
from db.models import Bot, BotStatus, Command, Position, Session, Trade
from tests.conftest import ROOT
from tests.test_bot_process import bot_env
from tests.waiting import wait_for

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


# --- prefixes


def test_each_bot_has_its_own_prefix_and_default_keeps_td() -> None:
    assert prefix_for("default") == "td"
    assert prefix_for("A") == "tdA"
    assert prefix_for("binance1") == "tdbinance1"
    names = ["a-b", "ab", "a_b", "averyveryverylongname", "averyveryverylongname2"]
    prefixes = [prefix_for(n) for n in names]
    assert len(set(prefixes)) == len(names)
    assert all(p.isalnum() and len(p) <= 12 for p in prefixes)


def test_an_explicit_client_order_prefix_wins() -> None:
    assert order_prefix(load_settings(BOT_NAME="A")) == "tdA"
    assert order_prefix(load_settings(BOT_NAME="A", CLIENT_ORDER_PREFIX="xy")) == "xy"


# --- commands addressed to bots


def _register(factory, *names: str) -> None:
    with factory() as db:
        for name in names:
            register_bot(db, name, NOW)
        db.commit()


def test_a_bot_only_takes_its_own_commands(db_url: str) -> None:
    factory = session_factory(make_engine(db_url))
    _register(factory, "A", "B")
    with factory() as db:
        enqueue_command(db, "pause", bot="A")
        enqueue_command(db, "close", "BTC/USDT", bot="B")
        assert [c.command for c in pending_commands(db, bot="A")] == ["pause"]
        assert [c.argument for c in pending_commands(db, bot="B")] == ["BTC/USDT"]
        assert not has_pending(db, ("close",), bot="A")
        assert has_pending(db, ("close",), bot="B")
        with pytest.raises(UnknownBot, match=r"'C'.*\(bots: A, B\)"):
            enqueue_command(db, "stop", bot="C")


def test_all_is_one_command_per_registered_bot(db_url: str) -> None:
    factory = session_factory(make_engine(db_url))
    _register(factory, "A", "B")
    with factory() as db:
        queued = enqueue_for_all(db, "stop")
        assert sorted(queued) == ["A", "B"]
        rows = db.scalars(select(Command).order_by(Command.id)).all()
        by_bot = {b.id: b.name for b in db.scalars(select(Bot))}
        assert sorted(by_bot[r.bot_id] for r in rows) == ["A", "B"]


@pytest.mark.slow
def test_the_cli_addresses_one_bot_or_all(sqlite_url: str) -> None:
    factory = session_factory(make_engine(sqlite_url))
    _register(factory, "A", "B")

    def cli(*words: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", "command", *words, "--db", sqlite_url],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert "for bot A: pause" in cli("pause", "--bot", "A").stdout
    both = cli("resume", "--all")
    assert both.returncode == 0 and both.stdout.count("queued command") == 2
    unknown = cli("stop", "--bot", "nobody")
    assert unknown.returncode == 2 and "no bot named 'nobody'" in unknown.stderr
    with factory() as db:
        assert db.scalar(select(func.count(Command.id))) == 3


# --- LISTEN/NOTIFY


def test_a_listening_bot_hears_its_command_at_once(postgres_url: str) -> None:
    factory = session_factory(make_engine(postgres_url))
    _register(factory, "A", "B")
    listener = CommandListener(postgres_url, "A")
    assert listener.connect()

    def send(bot: str) -> None:  # a note sent before the wait is queued on its connection
        with factory() as db:
            enqueue_command(db, "pause", bot=bot)

    try:
        # another bot's command does not wake A: its wait times out, connection kept
        send("B")
        assert listener.wait(1.0) is False
        # its own does: True, not a timeout however long the wait would be
        send("A")
        assert listener.wait(600.0) is True
    finally:
        listener.close()


def test_no_listener_on_sqlite(sqlite_url: str) -> None:
    assert CommandListener.for_url(sqlite_url, "A") is None


# --- the fleet listing


def test_bots_lists_state_pnl_and_positions(db_url: str) -> None:
    factory = session_factory(make_engine(db_url))
    with factory() as db:
        beat(db, "A", NOW, state="running", pid=1, host="elsewhere", mode="PAPER",
             venue="paper", engine="rules", symbols="BTC/USDT", loop_interval_seconds=1.0,
             notify_failures=2)
        bot_a = db.scalars(select(Bot).where(Bot.name == "A")).one()
        day = Session(date=NOW.date(), kind="live", run_name="A", bot_id=bot_a.id,
                      net_pnl=12.5, created_at=NOW)
        db.add(day)
        db.flush()
        db.add(Position(session_id=day.id, symbol="BTC/USDT", quantity=0.1, avg_price=100))
        db.commit()
        entries = {e.row.name: e for e in fleet_states(db, NOW)}
    a = entries["A"].as_dict()
    assert (a["state"], a["host"], a["pid"], a["net_pnl"], a["open_positions"]) == (
        "running", "elsewhere", 1, 12.5, 1)
    assert a["heartbeat_age_s"] == 0.0
    assert a["notify_failures"] == 2
    assert list(entries) == ["A"]  # a fresh database registers no bot of its own
    assert totals(list(entries.values())) == {"bots": 1, "up": 1, "net_pnl": {"USDT": 12.5},
                                             "open_positions": 1}
    later = fleet_states(factory(), NOW.replace(hour=13))
    assert {e.row.name: e.state.state for e in later}["A"] == "stale"


def test_a_stopping_bot_is_still_up(db_url: str) -> None:
    """A bot that carried out STOP and whose process on this host still exits reads as
    stopping: it still runs, so the fleet counts it up (and lists it as stopping), as the
    supervisor does when it declines to start a second one."""
    with session_factory(make_engine(db_url))() as db:
        beat(db, "exiting", NOW, state="stopped", pid=os.getpid(), host=socket.gethostname(),
             mode="PAPER", venue="paper", engine="rules", symbols="BTC/USDT",
             loop_interval_seconds=1.0)
        entries = {e.row.name: e for e in fleet_states(db, NOW)}
    assert entries["exiting"].as_dict()["state"] == "stopping"
    assert totals([entries["exiting"]])["up"] == 1


def test_the_fleets_pnl_is_summed_per_quote_currency(db_url: str) -> None:
    """A bot trading ETH/BTC counts its PnL in BTC: the Fleet page's net PnL of all bots
    added it to the USDT bots' as if both were one currency (12.5 USDT and 0.002 BTC read
    12.502); each quote currency is summed on its own."""
    with session_factory(make_engine(db_url))() as db:
        for name, symbols, net in (("usdt", "BTC/USDT,ETH/USDT", 12.5), ("usdt2", "SOL/USDT", 1.0),
                                   ("btc", "ETH/BTC", 0.002)):
            beat(db, name, NOW, state="running", pid=1, host="elsewhere", mode="PAPER",
                 venue="paper", engine="rules", symbols=symbols, loop_interval_seconds=1.0)
            bot = db.scalars(select(Bot).where(Bot.name == name)).one()
            db.add(Session(date=NOW.date(), kind="live", run_name=name, bot_id=bot.id,
                           net_pnl=net, created_at=NOW))
        db.commit()
        entries = fleet_states(db, NOW)
    assert totals(entries)["net_pnl"] == {"USDT": 13.5, "BTC": 0.002}


def test_a_bot_without_a_session_today_adds_nothing_to_todays_pnl(db_url: str) -> None:
    """The fleet's net PnL today summed each bot's newest day, today or not: a bot stopped
    three days ago added its last day's PnL to today's. Today is each bot's trading day in
    its SESSION_TIMEZONE (20:00 UTC is already tomorrow in Tokyo); a bot's older last day is
    still listed, labeled as its last day."""
    now = datetime(2026, 11, 25, 20, tzinfo=UTC)
    days = (("today", "UTC", date(2026, 11, 25), 10.0),
            ("stopped", "UTC", date(2026, 11, 22), 100.0),
            ("tokyo", "Asia/Tokyo", date(2026, 11, 26), 1.0),
            ("tokyo_yesterday", "Asia/Tokyo", date(2026, 11, 25), 1000.0))
    with session_factory(make_engine(db_url))() as db:
        for name, zone, day, net in days:
            beat(db, name, now, state="stopped", pid=1, host="elsewhere", mode="PAPER",
                 venue="paper", engine="rules", symbols="BTC/USDT", loop_interval_seconds=1.0)
            bot = db.scalars(select(Bot).where(Bot.name == name)).one()
            db.add(Session(date=day, kind="live", run_name=name, bot_id=bot.id, net_pnl=net,
                           created_at=now, settings=json.dumps({"session_timezone": zone})))
        db.commit()
        entries = fleet_states(db, now)
        listed = {line.split(":")[0]: line for line in _fleet_text(db, now=now).splitlines()}
    assert totals(entries)["net_pnl"] == {"USDT": 11.0}
    rows = {e.row.name: e.as_dict() for e in entries}
    assert {name: row["day_is_today"] for name, row in rows.items() if name != "default"} == {
        "today": True, "stopped": False, "tokyo": True, "tokyo_yesterday": False}
    assert rows["stopped"]["net_pnl"] == 100.0  # its last day's, said to be so
    assert "net PnL 100.00 on its last day 2026-11-22" in listed["stopped"]
    assert "net PnL 10.00 today" in listed["today"]


# --- three bot processes on one PostgreSQL


def _start(url: str, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot", "run", "--name", name, *extra],
                            cwd=ROOT, env=bot_env(url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def three_bots(postgres_url: str) -> Iterator[dict[str, subprocess.Popen]]:
    bots = {name: _start(postgres_url, name) for name in "ABC"}
    yield bots
    for process in bots.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def _trades_by_bot(factory) -> dict[str, list[Trade]]:
    with factory() as db:
        rows = db.execute(
            select(Bot.name, Trade).join(Session, Session.bot_id == Bot.id)
            .join(Trade, Trade.session_id == Session.id)
        ).all()
    found: dict[str, list[Trade]] = {}
    for name, trade in rows:
        found.setdefault(name, []).append(trade)
    return found


def _status(factory, name: str) -> BotStatus:
    with factory() as db:
        return db.scalars(select(BotStatus).where(BotStatus.name == name)).one()


def test_three_bots_trade_side_by_side(
    postgres_url: str, three_bots: dict[str, subprocess.Popen]
) -> None:
    factory = session_factory(make_engine(postgres_url))

    def all_traded() -> bool:
        for process in three_bots.values():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
        return set(_trades_by_bot(factory)) >= set("ABC")

    wait_for(all_traded, timeout=180, every=0.5)
    # each bot books only its own fills: its prefix, its own paper account's key
    for name, trades in _trades_by_bot(factory).items():
        if name in "ABC":
            assert all(t.client_order_id and t.client_order_id.startswith(f"td{name}-")
                       for t in trades), name
            assert {t.venue for t in trades} == {f"paper:live:{name}"}
    with factory() as db:
        assert db.scalar(select(func.count(Trade.id)).where(Trade.session_id.in_(
            select(Session.id).where(Session.bot_id.is_(None))))) == 0

    # a close-all to A leaves B and C trading
    with factory() as db:
        enqueue_command(db, "close-all", bot="A")
    done = wait_for(lambda: (c := _command(factory, "close-all")) and
                    c.status in ("done", "failed") and c)
    assert done.status == "done", done.result
    assert (done.executed_at - done.created_at).total_seconds() < 5
    assert _status(factory, "A").paused
    loops = {n: _status(factory, n).loop_count for n in "BC"}
    wait_for(lambda: all(_status(factory, n).loop_count > loops[n] + 2 for n in "BC"))
    assert not _status(factory, "B").paused and not _status(factory, "C").paused
    with factory() as db:
        assert db.scalars(select(Command).where(Command.bot_id != done.bot_id)).all() == []

    # the fleet as the CLI prints it
    listed = subprocess.run([sys.executable, "-m", "bot", "bots", "--db", postgres_url, "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    states = {b["name"]: b for b in json.loads(listed.stdout)}
    assert states["A"]["state"] == "paused" and states["A"]["open_positions"] == 0
    assert {states[n]["state"] for n in "BC"} == {"running"}
    assert states["B"]["pid"] == three_bots["B"].pid
    assert states["B"]["host"] == socket.gethostname()

    # STOP to all: every bot ends cleanly
    subprocess.run([sys.executable, "-m", "bot", "command", "stop", "--all", "--db",
                    postgres_url], cwd=ROOT, check=True, capture_output=True, timeout=60)
    for process in three_bots.values():
        assert process.wait(timeout=30) == 0


def _command(factory, name: str) -> Command | None:
    with factory() as db:
        return db.scalars(select(Command).where(Command.command == name)).first()


def test_one_name_one_process_on_postgres(postgres_url: str) -> None:
    factory = session_factory(make_engine(postgres_url))
    first = _start(postgres_url, "A")
    try:
        wait_for(lambda: _status_or_none(factory, "A") in ("running", "paused"))
        second = subprocess.run(
            [sys.executable, "-m", "bot", "run", "--name", "A"], cwd=ROOT,
            env=bot_env(postgres_url), capture_output=True, text=True, timeout=60)
        assert second.returncode == 3, second.stderr
        assert "'A' is already running" in second.stderr
        assert f"host {socket.gethostname()}, pid {first.pid}" in second.stderr
        # another name runs beside it
        other = _start(postgres_url, "B", "--iterations", "2")
        assert other.wait(timeout=60) == 0, other.stderr.read() if other.stderr else ""
        first.send_signal(signal.SIGKILL)
        first.wait()
        # the advisory lock died with the holder's connection: A can be taken again at once
        # (not by waiting: a second start still refused exits 3 instead of 0)
        again = _start(postgres_url, "A", "--iterations", "2")
        assert again.wait(timeout=60) == 0, again.stderr.read() if again.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def _status_or_none(factory, name: str) -> str | None:
    with factory() as db:
        row = db.scalars(select(BotStatus).where(BotStatus.name == name)).one_or_none()
        return None if row is None else row.state
