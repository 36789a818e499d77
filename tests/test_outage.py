"""Database outages under a running bot: waited out, never taken for a bad setting.

A PostgreSQL outage is made at the connection level by a TCP proxy the test cuts and restores
(the shared server is never stopped); a SQLite outage is a write lock held by another
connection past the busy timeout. The backoff's sleep is the test's: it releases the outage
after a few waits, so nothing waits for real and nothing depends on the wall clock.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import db.engine
from bot import loop
from bot.__main__ import main
from bot.audit import audit
from bot.loop import run_forever
from bot.runtime import Runtime
from db.engine import bound_engine, make_engine, session_factory
from db.migrate import current_revision, head_revision
from db.models import BotStatus, Trade
from db.retry import Outage, is_outage
from tests.conftest import ROOT, database_at
from tests.loop_harness import make_runtime
from tests.tcp_proxy import TcpProxy
from tests.test_bot_process import bot_env, queue, wait_for
from tests.test_faults import short_candles

STARTS = 4


@pytest.fixture
def candles(tmp_path: Path) -> Path:
    return short_candles(tmp_path, 350)  # 200 of warm-up, then 150 loop iterations


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    target = make_url(postgres_url)
    forwarder = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    yield forwarder
    forwarder.close()


def on_statement(rt: Runtime, fragment: str, nth: int, action: Callable[[], None],
                 times: int = 1) -> None:
    """Run ``action`` just before the ``nth`` statement of the runtime's engine that contains
    ``fragment`` (and the ``times - 1`` next ones): the outage starts at a chosen database
    touch of the real loop."""
    seen = 0

    def before(_conn, _cursor, statement: str, *_args) -> None:
        nonlocal seen
        if fragment in statement:
            seen += 1
            if nth <= seen < nth + times:
                action()

    event.listen(bound_engine(rt.db), "before_cursor_execute", before)


def ends_after(waits: int, release: Callable[[], None], seen: list[float]) -> Callable:
    """The backoff's sleep: ends the outage at the ``waits``-th wait, sleeping for nothing."""

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        if len(seen) == waits:
            release()
    return sleep


def run_through(rt: Runtime) -> None:
    """The real loop driver to the end of the replayed feed, at no pace of its own."""
    run_forever(rt)


def assert_booked_once_and_audit_clean(rt: Runtime) -> None:
    with rt.db() as db:
        ids = list(db.scalars(select(Trade.trade_id)))
        failed = [c for c in audit(db) if not c.ok]
        beat = db.scalars(select(BotStatus)).one()
    assert ids, "the run made no fill: the test would prove nothing"
    assert len(ids) == len(set(ids)), "a fill was booked twice"
    assert set(ids) == {f.id for f in rt.venue.fills}, "a venue fill was lost"  # type: ignore[attr-defined]
    assert not failed, failed
    assert beat.state == "stopped"


@pytest.fixture
def fast_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop sleeps nothing between iterations (its command poll still runs each time)."""
    monkeypatch.setattr(loop, "SLEEP_SLICE_SECONDS", 0.0)


@pytest.mark.parametrize(("fragment", "nth"), [
    ("INSERT INTO trades", 1),  # booking the first fill
    ("FROM commands", 60),  # the command poll between iterations, or the commands step
    ("UPDATE paper_clock", 30),  # the paper venue's account moving to the next candle
])
def test_postgres_outage_under_a_running_bot_is_waited_out(
        postgres_url, proxy, candles, fast_loop, fragment, nth) -> None:
    rt = make_runtime(proxy.url_for(postgres_url), [candles], LOOP_INTERVAL_SECONDS=0.001)
    waits: list[float] = []
    rt.outage.sleep = ends_after(3, proxy.restore, waits)
    on_statement(rt, fragment, nth, proxy.cut)
    run_through(rt)  # must not raise: the outage is waited out
    assert proxy.refused > 0 and len(waits) >= 3
    assert rt.outage.survived >= 1 and rt.outage.down_since is None
    assert all(0 < w <= rt.outage.max_delay_s for w in waits)
    assert_booked_once_and_audit_clean(rt)
    with rt.db() as db:  # every candle was stepped: the run went on where it was
        assert db.scalars(select(BotStatus)).one().loop_count >= 150


def test_sqlite_lock_held_past_the_busy_timeout_is_waited_out(
        sqlite_url, candles, fast_loop, monkeypatch) -> None:
    monkeypatch.setattr(db.engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    rt = make_runtime(sqlite_url, [candles], LOOP_INTERVAL_SECONDS=0.001)
    holder = sqlite3.connect(make_url(sqlite_url).database, isolation_level=None,
                             check_same_thread=False)
    waits: list[float] = []
    rt.outage.sleep = ends_after(3, lambda: holder.execute("ROLLBACK"), waits)
    # another connection takes the write lock as a heartbeat begins, and keeps it
    on_statement(rt, "FROM bot_status", 40, lambda: holder.execute("BEGIN EXCLUSIVE"))
    run_through(rt)
    holder.close()
    assert len(waits) >= 3 and rt.outage.survived >= 1
    assert "database is locked" in (rt.outage.last_error or "")
    assert_booked_once_and_audit_clean(rt)


def test_heartbeat_says_db_outage_while_it_can_be_written(sqlite_url, candles, fast_loop) -> None:
    """A touch that fails while the heartbeat row can still be written: the beat says so."""
    rt = make_runtime(sqlite_url, [candles], LOOP_INTERVAL_SECONDS=0.001)
    factory = session_factory(make_engine(sqlite_url))
    states: list[tuple[str | None, str | None]] = []

    def look(_seconds: float) -> None:
        with factory() as db:
            row = db.scalars(select(BotStatus)).one()
            states.append((row.state, row.last_error))
    rt.outage.sleep = look

    def disk_full() -> None:  # as the driver reports it; the heartbeat's writes still work
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("database or disk is full"))
    # three in a row: one at least is the poll between iterations (the step notes its own)
    on_statement(rt, "FROM commands", 30, disk_full, times=3)
    run_through(rt)
    assert states and states[0][0] == "db-outage"
    assert "database or disk is full" in (states[0][1] or "")
    assert_booked_once_and_audit_clean(rt)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


# a bot's start up to its migration, then held until every one is ready: they migrate at once
_START = """
import sys
from db.migrate import upgrade
print("ready", flush=True)
sys.stdin.readline()
upgrade(sys.argv[1])
"""


@pytest.mark.parametrize("revision", [None, "0001"], ids=["empty", "older"])
def test_simultaneous_first_starts_all_come_up(store, tmp_path, revision) -> None:
    """Several processes migrate one database at the same instant; every one comes up."""
    with database_at(store, tmp_path, revision) as url:
        starts = [subprocess.Popen([sys.executable, "-c", _START, url], cwd=ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(STARTS)]
        try:
            for process in starts:
                assert process.stdout is not None and process.stdout.readline() == "ready\n"
            for process in starts:  # go, all of them
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            outcomes = [(process.wait(timeout=120), process.stderr.read())  # type: ignore[union-attr]
                        for process in starts]
        finally:
            for process in starts:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert all(code == 0 for code, _ in outcomes), outcomes
        engine = make_engine(url)
        assert current_revision(engine) == head_revision(url)
        engine.dispose()


def test_outage_errors_are_told_from_bad_settings(tmp_path, postgres_admin_url) -> None:
    locked = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    locked.execute("CREATE TABLE t (x)")
    locked.execute("BEGIN EXCLUSIVE")
    db.engine.SQLITE_BUSY_TIMEOUT_MS, saved = 1, db.engine.SQLITE_BUSY_TIMEOUT_MS
    try:
        other = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
        with pytest.raises(OperationalError) as busy, other.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        db.engine.SQLITE_BUSY_TIMEOUT_MS = saved
        locked.close()
    assert is_outage(busy.value)
    down = TcpProxy("127.0.0.1", 1)
    down.cut()
    with pytest.raises(OperationalError) as refused:
        make_engine(down.url_for(postgres_admin_url)).connect()
    down.close()
    assert is_outage(refused.value)
    wrong = make_url(postgres_admin_url).set(password="not-the-password")
    with pytest.raises(OperationalError) as login:
        make_engine(wrong.render_as_string(hide_password=False)).connect()
    assert not is_outage(login.value)


def test_backoff_is_capped_and_jittered() -> None:
    outage = Outage(first_delay_s=0.5, max_delay_s=8.0)
    delays = [outage.delay(attempt) for attempt in range(40)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert max(delays[:2]) <= 1.0 and min(delays[10:]) >= 4.0
    assert len(set(delays[10:])) > 1  # jittered: bots that lost one server spread out


def test_malformed_database_url_is_a_bad_setting(monkeypatch, capsys) -> None:
    for url in ("not a url", "postgresql://u:p@host:port/db", "mysql://u@host/db"):
        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["run", "--iterations", "1"]) == 2
        err = capsys.readouterr().err
        assert "invalid setting DATABASE_URL" in err and "Traceback" not in err


def test_bot_started_while_the_database_is_down_waits_then_runs(
        postgres_url, proxy, candles) -> None:
    proxy.cut()
    url = proxy.url_for(postgres_url)
    env = bot_env(url, FEED=f"replay:{candles}", LOOP_INTERVAL_SECONDS="0.2")
    bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(bot.stderr), daemon=True).start()
    try:
        wait_for(lambda: bot.poll() is not None or any("db-outage" in x for x in lines))
        assert bot.poll() is None, "".join(lines)  # waiting, not exited as a bad setting
        proxy.restore()
        factory = session_factory(make_engine(postgres_url))

        def running() -> bool:
            with factory() as db:
                row = db.scalars(select(BotStatus)).one_or_none()
                return row is not None and row.state == "running"
        wait_for(lambda: bot.poll() is not None or running())
        assert bot.poll() is None, "".join(lines)
        queue(postgres_url, "stop")
        assert bot.wait(timeout=60) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    assert any("database is back" in x for x in lines), "".join(lines)


@pytest.mark.parametrize("down", ["cut", "stall"])
def test_one_shot_command_on_a_down_database_is_not_a_bad_setting(
        proxy, postgres_url, down: str) -> None:
    """Down as a restarting server is (every connection refused), or as one that accepts a
    connection and then never answers: the attempt gives up after its timeout (libpq's
    ``connect_timeout``) rather than waiting on the socket for ever."""
    getattr(proxy, down)()
    done = subprocess.run([sys.executable, "-m", "bot", "bots", "--db",
                           proxy.url_for(postgres_url)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("database unreachable: ") and "Traceback" not in done.stderr
    assert "tradedesk:tradedesk@" not in done.stderr  # the password never shows


def test_console_says_database_unreachable_in_words(proxy, postgres_url, monkeypatch) -> None:
    """Down at the first run, and down under an open page: words, never a traceback."""
    from streamlit import config as st_config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRADEDESK_NO_AUTOSTART", "1")
    monkeypatch.setenv("DATABASE_URL", proxy.url_for(postgres_url))
    previous = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")  # local: no login gate
    for cut_before_first_run in (True, False):
        if cut_before_first_run:
            proxy.cut()
        at = AppTest.from_file(str(ROOT / "console.py"), default_timeout=60)
        at.run()
        if not cut_before_first_run:
            assert not at.exception and not at.error, [e.value for e in at.error]
            proxy.cut()
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown = " ".join(e.value for e in at.error)
        assert "Database unreachable" in shown, shown
        assert "Traceback" not in shown and "/work/" not in shown and "SELECT" not in shown
        assert "tradedesk:tradedesk@" not in shown
        proxy.restore()
    st_config.set_option("server.address", previous)


def test_a_close_all_meeting_a_locked_database_waits_and_is_carried_out(
        sqlite_url, tmp_path) -> None:
    """SQLite is locked for one statement in the middle of a close-all (as it journals the
    plan's exit). That is an outage, not a refusal: the close-all stays pending and the
    next pass carries it out; it is never marked failed with the position still open."""
    from bot.steps.commands import obey_commands
    from db.commands import enqueue_command
    from db.models import Command
    from tests.crafted import flat_then
    from tests.loop_harness import step
    from tests.test_plans import SYMBOL, entry, runtime

    rt = runtime(sqlite_url, flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 10),
                 [entry(stop=95.0)])
    step(rt, 2)
    assert rt.book.quantity(SYMBOL) > 0
    with rt.db() as db:
        command_id = enqueue_command(db, "close-all", bot=rt.settings.bot_name)

    def locked() -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    on_statement(rt, "INSERT INTO orders", 1, locked)
    obey_commands(rt)
    with rt.db() as db:
        command = db.get(Command, command_id)
        assert command is not None and (command.status, rt.paused) == ("pending", True), (
            command.result)
    obey_commands(rt)
    with rt.db() as db:
        command = db.get(Command, command_id)
        assert command is not None and command.status == "done", command.result
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)


def test_an_exit_left_unsent_by_a_venue_fault_and_a_lock_is_sent_again(
        sqlite_url, tmp_path) -> None:
    """The plan's stop is hit while the venue refuses every order (its exit is journaled,
    then given up) and SQLite is locked for the statement that would record the give-up:
    the exit stays in the journal as never sent and the plan as closing. Once both answer,
    the exit goes out (with its own client order id) and the plan closes; it does not wait
    for a restart, its stop unguarded meanwhile."""
    from bot.loop import run_iteration
    from db.models import Order, TradePlan
    from tests.crafted import flat_then
    from tests.loop_harness import ScriptedEngine, SendsRefused, make_runtime, step
    from tests.test_plans import LOOSE, SYMBOL, entry

    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 4 + [98.5] * 8)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([entry(stop=99.0)]),
                      venue_class=SendsRefused, **LOOSE)
    venue = rt.venue
    assert isinstance(venue, SendsRefused)
    step(rt, 2)
    assert rt.book.quantity(SYMBOL) > 0
    venue.down = True

    def locked() -> None:
        raise OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    on_statement(rt, "UPDATE orders", 1, locked)
    with rt.db() as db:
        for _ in range(6):
            run_iteration(rt)
            venue.advance()
            if db.scalars(select(Order).where(Order.purpose == "exit")).first() is not None:
                break
        (exit_order,) = db.scalars(select(Order).where(Order.purpose == "exit"))
        assert exit_order.status == "new"
    venue.down = False
    step(rt, 2)
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
        sells = list(db.scalars(select(Trade).where(Trade.action == "SELL")))
    assert plan.status == "closed" and len(sells) == 1
    assert rt.book.quantity(SYMBOL) == pytest.approx(0.0)
