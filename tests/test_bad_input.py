"""Bad input never stalls the loop, corrupts a database, or renders as markup.

A flood of 2,000 commands (valid, unknown, malformed) is worked off oldest first within a
bounded number of iterations; a database that is not ours, or that cannot be written, is
refused with a message naming it and left untouched; a hostile trace shows on the Decisions
page as text, never as markdown or HTML.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.loop import run_iteration
from db.commands import MAX_ARGUMENT_CHARS, enqueue_command
from db.migrate import DatabaseError, upgrade
from db.models import Bot, Command, LLMTrace
from db.traces import add_trace
from tests.conftest import ROOT, candle_file
from tests.loop_harness import make_runtime
from tests.test_console_apptest import _app, _console_env, _open  # noqa: F401 (autouse)

FLOOD = 2_000  # ten batches of the commands step
MIXED = [("pause", None), ("resume", None), ("close", "NOT/ASYMBOL"), ("cancel", None),
         ("cancel", "no-such-order"), ("close", ""), ("close", "x" * MAX_ARGUMENT_CHARS), ("resume", "extra")]


@pytest.mark.slow
def test_command_flood_is_worked_off_oldest_first(sqlite_url) -> None:
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    with rt.db() as db:
        for i in range(FLOOD):
            enqueue_command(db, *MIXED[i % len(MIXED)])
    iterations = 0
    handled_up_to = 0
    while True:
        run_iteration(rt)  # errors of single commands are tolerated, the loop goes on
        iterations += 1
        with rt.db() as db:
            pending = db.scalar(select(func.min(Command.id)).where(Command.status == "pending"))
            finished = db.scalar(select(func.max(Command.id)).where(Command.status != "pending"))
        assert pending is None or finished < pending, "a newer command was taken first"
        assert finished > handled_up_to, "an iteration handled no command"
        handled_up_to = finished
        if pending is None:
            break
        assert iterations < FLOOD // 50, "the flood is not worked off in bounded iterations"
        rt.venue.advance()
    with rt.db() as db:
        statuses = {s: n for s, n in db.execute(
            select(Command.status, func.count()).group_by(Command.status))}
        unknown = db.scalar(select(Command.result).where(Command.argument == "NOT/ASYMBOL"))
    assert set(statuses) <= {"done", "failed"} and sum(statuses.values()) == FLOOD
    assert "NOT/ASYMBOL" in (unknown or "")
    # Trading still works after the flood: the next iteration completes with the same steps.
    run_iteration(rt)
    assert set(rt.step_durations) >= {"market_data", "resync", "fill_sync", "plans"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_foreign_database_is_refused_and_untouched(tmp_path) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('alice')")
    before = _digest(path)
    with pytest.raises(DatabaseError, match="no Tradedesk schema version"):
        upgrade(f"sqlite:///{path}")
    assert _digest(path) == before
    done = subprocess.run([sys.executable, "-m", "bot", "run", "--iterations", "1", "--db",
                           f"sqlite:///{path}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert str(path) in done.stderr
    assert _digest(path) == before


@pytest.fixture
def read_only_folder(tmp_path) -> Iterator[tuple[Path, Path]]:
    """(writable source, read-only view of it): a read-only bind mount, since root (as CI
    runs) writes through any file mode."""
    source, view = tmp_path / "source", tmp_path / "view"
    source.mkdir()
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True,
                       capture_output=True)
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], check=True, capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("revision", ["head", "0001"])
def test_read_only_database_gives_a_clear_message(read_only_folder, revision) -> None:
    """Current or older schema: every entry point names the database, says what to check,
    exits 2 without a traceback, and the file stays byte for byte."""
    source, view = read_only_folder
    upgrade(f"sqlite:///{source / 'tradedesk.db'}", revision)
    before = _digest(source / "tradedesk.db")
    url = f"sqlite:///{view / 'tradedesk.db'}"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DATABASE_URL": url}
    for argv in (["bot", "run", "--iterations", "1"], ["bot", "audit", "--json"],
                 ["bot", "command", "pause"], ["db.migrate"]):
        done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env=env)
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr, (argv, done.stderr)
        assert done.stderr.startswith("database error: "), (argv, done.stderr)
        assert str(view) in done.stderr, (argv, done.stderr)
    assert _digest(source / "tradedesk.db") == before


def test_missing_database_folder_is_created(tmp_path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    upgrade(f"sqlite:///{path}")
    assert path.exists()


@pytest.mark.slow
def test_hostile_trace_renders_as_text(sqlite_url, monkeypatch) -> None:
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    script = "<script>alert('pwned')</script>"
    html = '<img src=x onerror="alert(1)"><b>bold html</b>'
    markdown = "# Heading\n**bold** [link](javascript:alert(1)) ![img](http://x/y.png)"
    huge = "A" * 1_000_000
    with rt.db() as db:
        add_trace(db, session_id=rt.session_id, engine="gemini", status="ok",
                  prompt=f"{markdown}\n{huge}", raw_response=f"{script}\n{html}",
                  errors=[script], decision_json='{"reason": "' + html.replace('"', "'") + '"}',
                  created_at=rt.now())
        db.commit()
        newest = db.scalar(select(func.max(LLMTrace.id)))
    at = _open(_app(sqlite_url, monkeypatch), "decisions")
    at.selectbox(key="dec_trace").set_value(newest).run()
    assert not at.exception
    code = "\n".join(c.value for c in at.code)
    for raw in (script, html.replace('"', "'"), "# Heading", "**bold**"):
        assert raw in code, raw
    assert huge in code
    for element in list(at.markdown) + list(at.get("html")):
        value = str(getattr(element, "value", ""))
        assert "<script>" not in value and "onerror" not in value and "# Heading" not in value


HUGE_ARGUMENT = "A" * 10_000_000


def test_enqueue_refuses_an_oversized_argument_and_names_it(sqlite_url) -> None:
    from db.commands import ArgumentTooLong

    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    with rt.db() as db, pytest.raises(ArgumentTooLong, match="argument") as refused:
        enqueue_command(db, "close", HUGE_ARGUMENT)
    assert len(str(refused.value)) < 300 and "10,000,000" in str(refused.value)
    with rt.db() as db:
        assert db.scalar(select(func.count()).select_from(Command)) == 0


@pytest.mark.slow
def test_cli_says_an_argument_is_too_long_without_a_traceback(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "command", "close", "B" * 5000, "--db", url],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "argument" in done.stderr and "5,000" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "B" * 300 not in done.stderr


@pytest.mark.slow
def test_bot_fails_an_oversized_argument_without_copying_it(sqlite_url) -> None:
    """A row written by someone else: the command fails with a short result; close-all and
    stop, which take no argument, are still carried out."""
    from db.commands import MAX_RESULT_CHARS

    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    with rt.db() as db:
        bot_id = db.scalar(select(Command.bot_id).limit(1)) or db.scalar(
            select(func.min(Bot.id)))
        rows = [Command(command=name, argument=HUGE_ARGUMENT, status="pending", bot_id=bot_id)
                for name in ("close", "cancel", "close-all")]
        db.add_all(rows)
        db.commit()
        ids = [row.id for row in rows]
    run_iteration(rt)
    with rt.db() as db:
        done = {c.command: c for c in db.scalars(select(Command).where(Command.id.in_(ids)))}
    for name in ("close", "cancel"):
        assert done[name].status == "failed"
        assert "argument" in done[name].result and len(done[name].result) < 300
    assert done["close-all"].status == "done", done["close-all"].result
    assert all(len(c.result) <= MAX_RESULT_CHARS for c in done.values())


def test_a_command_result_is_bounded(sqlite_url) -> None:
    from db.commands import MAX_RESULT_CHARS, finish_command

    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    with rt.db() as db:
        command_id = enqueue_command(db, "pause")
        finish_command(db, db.get(Command, command_id), "done", "R" * 1_000_000, rt.now())
    with rt.db() as db:
        result = db.get(Command, command_id).result
    assert len(result) <= MAX_RESULT_CHARS and result.startswith("RRR")
