"""``python -m bot command`` names a command no bot knows, or a close or cancel without its
symbol or order id, and queues nothing: a mistyped close-all (``closeall``, as Telegram
spells it) was queued, said "queued" with exit 0, and only failed later at the bot, while
the operator believed the positions were being closed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.__main__ import main
from bot.replay import ReplayArgs, run_replay
from bot.steps.commands import obey_commands
from db.bots import register_bot
from db.engine import make_engine, session_factory
from db.models import Command
from db.orders import live_orders
from tests.conftest import candle_file
from tests.loop_harness import make_runtime, step
from tests.test_kill import cut_file
from tests.waiting import wait_for


def _exit_code(argv: list[str]) -> int:
    """``main``'s exit code, argparse's own refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exited:
        return int(exited.code or 0)


def _queued(url: str) -> int:
    with session_factory(make_engine(url))() as db:
        return db.scalar(select(func.count()).select_from(Command)) or 0


@pytest.mark.parametrize(("argv", "named"), [
    (["closeall"], "'closeall'"),
    (["close"], "close needs a symbol"),
    (["cancel"], "cancel needs an order id"),
])
def test_a_command_no_bot_can_carry_out_is_named_and_not_queued(
        sqlite_url, tmp_path, capsys, argv: list[str], named: str) -> None:
    step(make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default"))
    code = _exit_code(["command", *argv, "--db", sqlite_url])
    err = capsys.readouterr().err
    assert code == 2 and named in err, err
    assert _queued(sqlite_url) == 0
    assert _exit_code(["command", "close-all", "--db", sqlite_url]) == 0  # the right one
    assert _queued(sqlite_url) == 1


def test_a_command_for_a_bot_that_never_ran_says_so_and_names_the_replays(
        sqlite_url, tmp_path, capsys) -> None:
    """A replay answers to its run name: ``command stop`` with no ``--bot`` names
    ``default``, which never ran on a replays database and so is no bot of it; the operator
    is told so, given the runs that would obey, and nothing is queued."""
    summary = run_replay(ReplayArgs([cut_file(tmp_path, 205)], sqlite_url), progress=False)
    assert main(["command", "stop", "--db", sqlite_url]) == 2
    err = capsys.readouterr().err
    assert "no bot named 'default' in this database (bots: none" in err, err
    assert f"replay runs: {summary['run_name']}" in err, err
    assert _queued(sqlite_url) == 0
    step(make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default"))
    assert main(["command", "pause", "--db", sqlite_url]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", [
    ["command", "stop"], ["command", "close-all", "--all"], ["bots"], ["audit"],
    ["prune", "--days", "3"], ["watch", "--once"], ["telegram"], ["mcp", "--http"],
    ["replay-live", "--bot", "default", "--day", "2026-01-01"],
], ids=lambda argv: " ".join(argv))
def test_a_database_file_that_is_not_there_is_named_not_created(
        sqlite_url, tmp_path, capsys, monkeypatch, argv: list[str]) -> None:
    """A mistyped ``--db`` path (tradedsk.db for tradedesk.db) is named, exit 2, and no file
    is made: ``command stop`` created a fresh database there, queued the stop in it and
    exited 0, while the bot on the real database went on trading; ``audit`` and ``prune``
    left an empty file and said "no such table"."""
    monkeypatch.setenv("NOTIFY_URLS", "json://127.0.0.1:9/watch")  # watch runs with one
    # telegram and mcp, without their tokens, would stop on those: the file is named first
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("MCP_TOKEN", raising=False)
    step(make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default"))
    typo = tmp_path / "typo" / "tradedsk.db"
    code = _exit_code([*argv, "--db", f"sqlite:///{typo}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"there is no database file at {typo}" in err and "Traceback" not in err, err
    assert not typo.parent.exists()
    assert _queued(sqlite_url) == 0


def _resting_limit(url: str, path, name: str) -> tuple:
    """A live bot named ``name`` whose limit buy rests open below the market."""
    from bot.engine.schema import Action, ActionType, Decision
    from tests.loop_harness import ScriptedEngine

    rt = make_runtime(url, [path], ScriptedEngine([]), kind="live", run_name=name)
    step(rt)
    rt.engine.decisions.append(Decision(actions=[Action(
        action=ActionType.BUY, symbol="BTC/USDT", reason="rests", size=0.05,
        order_type="limit", price=round(rt.quotes["BTC/USDT"].last * 0.9, 1))]))
    step(rt)
    with rt.db() as db:
        (order,) = live_orders(db, rt.session_id)
    assert order.status == "open" and order.order_id
    return rt, order.order_id


def test_a_cancel_of_an_order_the_bot_has_not_open_is_refused_at_the_command_line(
        sqlite_url, tmp_path, capsys) -> None:
    """``command cancel abc`` was queued (exit 0) for an order id the bot cannot have, and
    failed only later at the bot. The command line checks the store: the id must be an open
    order of the named bot's own run, not another bot's, not one already gone; it says
    which orders are open. ``--all`` cannot cancel one bot's order."""
    path = cut_file(tmp_path, 210)
    rt, own = _resting_limit(sqlite_url, path, "default")
    _, others = _resting_limit(sqlite_url, path, "other")

    def refused(*argv: str) -> str:
        assert _exit_code(["command", *argv, "--db", sqlite_url]) == 2
        return capsys.readouterr().err

    said = refused("cancel", "abc")
    assert "no order of bot 'default' has id 'abc'" in said and f"open: {own}" in said, said
    assert "no order of bot 'default' has id" in refused("cancel", others, "--bot", "default")
    assert "one bot's" in refused("cancel", own, "--all")
    assert _queued(sqlite_url) == 0
    assert _exit_code(["command", "cancel", own, "--db", sqlite_url]) == 0
    # the bot carries it out, at its next poll (a command queued by another process's
    # store waits out the bot's quiet-poll throttle)
    assert wait_for(lambda: obey_commands(rt)) == 1
    assert f"order {own} of bot 'default' is canceled, not open" in refused("cancel", own)
    assert _queued(sqlite_url) == 1


def test_a_symbol_after_the_options_is_the_commands_argument(sqlite_url, tmp_path) -> None:
    """``command close --db URL BTC/USDT`` was refused by argparse ("unrecognized
    arguments"): the argument may come anywhere a positional may."""
    step(make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default"))
    assert _exit_code(["command", "close", "--db", sqlite_url, "BTC/USDT"]) == 0
    with session_factory(make_engine(sqlite_url))() as db:
        assert [(c.command, c.argument) for c in db.scalars(select(Command))] == [
            ("close", "BTC/USDT")]
    assert _exit_code(["command", "close", "--db", sqlite_url, "BTC/USDT", "extra"]) == 2


@pytest.mark.parametrize(("argv", "named"), [
    (["watch", "--once", "--every", "0"], "argument --every: 0 is not above 0"),
    (["watch", "--once", "--every", "-15"], "argument --every: -15 is not above 0"),
    (["run", "--iterations", "0"], "argument --iterations: 0 is not at least 1"),
    (["mcp", "--http", "--port", "99999"], "argument --port: 99999 is not a port (1 to 65535)"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else "said")
def test_a_number_out_of_its_range_is_named_by_its_flag(
        sqlite_url, tmp_path, capsys, monkeypatch, argv: list[str], named: str) -> None:
    """``watch --every 0`` (or below) swept the database without a pause, a core's worth of
    queries for ever; ``run --iterations 0`` ran an iteration all the same; ``mcp --port
    99999`` died in a pydantic traceback. Each is refused by its flag, before anything runs."""
    monkeypatch.setenv("NOTIFY_URLS", "json://127.0.0.1:9/watch")
    monkeypatch.setenv("MCP_TOKEN", "a-token-long-enough-for-http")
    step(make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default"))
    code = _exit_code([*argv, "--db", sqlite_url])
    err = capsys.readouterr().err
    assert code == 2, err
    assert named in err and "Traceback" not in err, err


@pytest.mark.parametrize(("argv", "named"), [
    (["close-all", "beta"], "close-all takes no argument: to command the bot beta, "
                            "python -m bot command close-all --bot beta"),
    (["stop", "beta"], "stop takes no argument: to command the bot beta, "
                       "python -m bot command stop --bot beta"),
    (["pause", "now"], "pause takes no argument; nothing was queued"),
    (["resume", "--all", "beta"], "resume takes no argument: to command the bot beta, "),
], ids=lambda value: " ".join(value) if isinstance(value, list) else "said")
def test_a_bots_name_given_as_the_argument_commands_no_other_bot(
        sqlite_url, tmp_path, capsys, argv: list[str], named: str) -> None:
    """``command close-all beta`` (the bot's name without --bot) was queued for the default
    bot, with 'beta' as an argument close-all ignores: the default bot sold everything it
    held while beta, the bot meant, went on. A command that takes no argument refuses one,
    and a bot's name given so is pointed to --bot; nothing is queued."""
    candles = [cut_file(tmp_path, 210)]
    for name in ("default", "beta"):
        rt = make_runtime(sqlite_url, candles, kind="live", run_name=name)
        step(rt)
        with rt.db() as db:
            register_bot(db, name, rt.now())
            db.commit()
    code = _exit_code(["command", *argv, "--db", sqlite_url])
    err = capsys.readouterr().err
    assert code == 2 and named in err, err
    assert _queued(sqlite_url) == 0


def test_a_close_of_a_symbol_the_bot_does_not_trade_is_refused_at_the_command_line(
        sqlite_url, tmp_path, capsys) -> None:
    """``command close ETH/USDT`` for a bot trading BTC/USDT was queued (exit 0) and failed
    only later, at the bot; it is refused naming the bot's symbols, as a cancel of an order
    the bot has not open is. The bot's own spelling rules (any case) still pass."""
    step(make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default"))
    assert _exit_code(["command", "close", "ETH/USDT", "--db", sqlite_url]) == 2
    err = capsys.readouterr().err
    assert ("bot 'default' trades BTC/USDT, not 'ETH/USDT'; close takes one of its symbols; "
            "nothing was queued") in err, err
    assert _queued(sqlite_url) == 0
    assert _exit_code(["command", "close", "btc/usdt", "--db", sqlite_url]) == 0
    assert _queued(sqlite_url) == 1


@pytest.mark.parametrize("argv", [
    ["run", "--iterations", "1"], ["command", "stop"], ["bots"], ["audit"],
    ["prune", "--days", "3"], ["watch", "--once"], ["telegram"], ["mcp", "--http"],
    ["report"], ["replay-live", "--bot", "default", "--day", "2026-01-01"],
    ["replay", "--candles", str(candle_file("BTC_USDT-5m.csv"))],
], ids=lambda argv: " ".join(argv[:2]))
@pytest.mark.parametrize("given", ["a directory", "a text file"])
def test_a_database_path_that_is_no_database_is_named(
        tmp_path, capsys, monkeypatch, argv: list[str], given: str) -> None:
    """``--db`` naming a folder said "cannot be opened or written ... check that the file
    and its folder are writable"; naming a file that is not SQLite's (a candle CSV, a
    .env) ended in a traceback of sqlite3's "file is not a database", exit 1. Each is
    named, exit 2, and the file is left as it was."""
    monkeypatch.setenv("NOTIFY_URLS", "json://127.0.0.1:9/watch")
    path = tmp_path / "not-a-db"
    if given == "a directory":
        path.mkdir()
        named = f"--db: {path} is a directory, not a database file"
    else:
        path.write_text("timestamp,open,high,low,close,volume\n")
        named = f"--db: {path} is not a SQLite database file"
    code = _exit_code([*argv, "--db", f"sqlite:///{path}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert named in err and "Traceback" not in err, err
    if given == "a text file":
        assert path.read_text() == "timestamp,open,high,low,close,volume\n"


def test_a_sqlite_url_with_no_file_is_refused(tmp_path, capsys) -> None:
    """``sqlite:///`` (no path) is a database in memory, gone with the process: ``run``
    traded into it, and every other command said "no such table"."""
    code = _exit_code(["run", "--iterations", "1", "--db", "sqlite:///"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "invalid setting DATABASE_URL: a SQLite URL names its file" in err, err
    assert _exit_code(["bots", "--db", "sqlite://"]) == 2
    assert "a SQLite URL names its file" in capsys.readouterr().err
