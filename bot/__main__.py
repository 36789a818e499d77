"""Command line: ``python -m bot run | command | bots | audit | replay | replay-live | report |
prune | telegram | mcp | watch``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from bot.config import ConfigError, Settings, load_settings
from bot.model.vocabulary import CommandKind
from bot.prune import add_parser as add_prune_parser
from bot.run_settings import REPLAY_OPTIONS, flag_named, replay_overrides
from db.engine import (
    DEFAULT_DATABASE_URL,
    check_url,
    make_engine,
    missing_sqlite_file,
    session_factory,
    sqlite_file_problem,
)
from db.migrate import DatabaseError, shown
from db.retry import Outage, described, is_outage

if TYPE_CHECKING:
    from telegram.ext import Application

EXIT_UNREACHABLE = 1  # a one-shot command found the database down: try again later
EXIT_CONFIG = 2
EXIT_LOCKED = 3
MAX_PORT = 65535
# what the commands that act on one thing need, named when it is missing
COMMAND_ARGUMENTS = {CommandKind.CLOSE: "a symbol (e.g. BTC/USDT)",
                     CommandKind.CANCEL: "an order id"}


def _db_url(args: argparse.Namespace) -> str:
    """``--db``, else DATABASE_URL, else the default; checked as the setting would be."""
    return _checked_url(
        getattr(args, "db", None) or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)


def _checked_url(url: str) -> str:
    try:
        return check_url(url)
    except ValueError as exc:
        raise ConfigError(f"invalid setting DATABASE_URL: {exc}") from None


def _source(args: argparse.Namespace) -> str:
    return "--db" if getattr(args, "db", None) else "DATABASE_URL"


def _refuse_no_database(url: str, source: str) -> None:
    """A ConfigError for a SQLite path that is a folder or a file of something else."""
    if (problem := sqlite_file_problem(url)) is not None:
        raise ConfigError(f"{source}: {problem}")


def _usable_db_url(args: argparse.Namespace) -> str:
    """``_db_url``, its SQLite path a database (or not there yet)."""
    url = _db_url(args)
    _refuse_no_database(url, _source(args))
    return url


def _existing_db_url(args: argparse.Namespace) -> str:
    """``_usable_db_url`` for a command that reads or commands a store the bots run on: a
    SQLite file that is not there is a mistyped path, named, not a fresh database made there
    (a stop queued in it would reach no bot)."""
    url = _usable_db_url(args)
    if (missing := missing_sqlite_file(url)) is not None:
        raise ConfigError(f"{_source(args)}: there is no database file at {missing}; a bot's "
                          "first run (python -m bot run) creates it")
    return url


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {"DATABASE_URL": args.db} if args.db else {}
    if args.name is not None:  # an empty one is refused, not taken for no --name
        overrides["BOT_NAME"] = args.name
    try:
        settings = load_settings(**overrides)  # a malformed DATABASE_URL is refused here
    except ConfigError as exc:
        raise flag_named(exc, {"BOT_NAME": "--name"} if args.name is not None else {}) from None
    _refuse_no_database(settings.database_url, _source(args))

    from bot.app import build_runtime, warn_of_oversized_balance
    from bot.lock import BotAlreadyRunning, BotLock
    from bot.loop import run_forever
    from bot.secrets_filter import install_log_scrubber

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_log_scrubber(settings.secret_values())
    lock = BotLock(settings.database_url, settings.bot_name)
    startup = Outage()  # a database that is down at start is waited for, not a bad setting
    try:
        startup.run("bot lock", lock.acquire)
    except BotAlreadyRunning:
        print(f"bot {settings.bot_name!r} is already running against this database "
              f"({_holder(settings)}); not starting a second one", file=sys.stderr)
        return EXIT_LOCKED
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    application = _telegram_beside(settings)  # a bad TELEGRAM_ setting stops it before it runs
    telegram = None
    try:
        runtime = startup.run("start", lambda: build_runtime(settings))
        if application is not None:  # answers once the runtime registered the bot
            from bot.telegram import start_background

            telegram = start_background(application)
        warn_of_oversized_balance(runtime)
        try:
            run_forever(runtime, max_iterations=args.iterations)
        finally:
            runtime.events.close()  # what waits is sent, within a few seconds
    finally:
        if telegram is not None:
            telegram.close()
        lock.release()
    return 0


def _telegram_beside(settings: Settings) -> Application | None:
    """With TELEGRAM_WITH_BOT, Telegram control for a thread of the bot's process."""
    if not settings.telegram_with_bot:
        return None
    from bot.telegram import build_application, desk_for, quiet_http_log

    quiet_http_log()
    return build_application(settings, desk_for(settings))


def _holder(settings) -> str:
    from db.heartbeat import status_row

    with session_factory(make_engine(settings.database_url))() as db:
        row = status_row(db, settings.bot_name)
        return f"host {row.host}, pid {row.pid}"


def cmd_command(args: argparse.Namespace) -> int:
    """Queue for one bot (--bot, else BOT_NAME, else ``default``) or one row per bot (--all)."""
    from bot.model.vocabulary import RunKind
    from db.bots import UnknownBot, bot_names, has_run, require_bot_id
    from db.commands import ArgumentTooLong, check_argument, enqueue_command, enqueue_for_all
    from db.migrate import upgrade

    try:
        check_argument(args.argument)
    except ArgumentTooLong as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    if args.name in COMMAND_ARGUMENTS and not args.argument:
        print(f"{args.name} needs {COMMAND_ARGUMENTS[args.name]}: python -m bot command "
              f"{args.name} ARGUMENT; nothing was queued", file=sys.stderr)
        return EXIT_CONFIG
    if args.name == CommandKind.CANCEL and args.all:
        print("cancel names one bot's order: give its bot with --bot, not --all; nothing "
              "was queued", file=sys.stderr)
        return EXIT_CONFIG
    url = _existing_db_url(args)
    upgrade(url)
    words = f"{args.name} {args.argument or ''}".rstrip()
    with session_factory(make_engine(url))() as db:
        if args.argument and args.name not in COMMAND_ARGUMENTS:
            print(_argument_refused(db, args.name, args.argument.strip()), file=sys.stderr)
            return EXIT_CONFIG
        if args.all:
            queued = enqueue_for_all(db, args.name, args.argument)
        else:
            bot = args.bot or os.environ.get("BOT_NAME") or "default"
            try:
                require_bot_id(db, bot)
            except UnknownBot as exc:
                print(str(exc), file=sys.stderr)
                return EXIT_CONFIG
            refusal = _refusal(db, bot, args.name, args.argument)
            if refusal:
                print(f"{refusal}; nothing was queued", file=sys.stderr)
                return EXIT_CONFIG
            queued = {bot: enqueue_command(db, args.name, args.argument, bot)}
            if not has_run(db, bot):
                replays = bot_names(db, RunKind.REPLAY)
                print(f"bot {bot!r} has never run on this database: the command waits for it"
                      + (f" (replay runs: {', '.join(replays)}; --bot names one)"
                         if replays else ""), file=sys.stderr)
    for bot, command_id in queued.items():
        print(f"queued command {command_id} for bot {bot}: {words}")
    return 0


def _refusal(db: OrmSession, bot: str, kind: str, argument: str | None) -> str | None:
    """Why ``bot`` would refuse a close or a cancel, said before it is queued (None: queue
    it): a symbol it does not trade, an order it has not open."""
    from db.bots import close_refusal
    from db.orders import cancel_refusal

    if not argument:
        return None
    if kind == CommandKind.CANCEL:
        return cancel_refusal(db, bot, argument.strip())
    if kind == CommandKind.CLOSE:
        return close_refusal(db, bot, argument)
    return None


def _argument_refused(db: OrmSession, kind: str, argument: str) -> str:
    """What a command that takes no argument says of one. The bot ignores it (stop and
    close-all are never refused), so a bot's name given there, not with --bot, would
    command another bot: it is pointed to --bot."""
    from db.bots import bot_id

    if bot_id(db, argument) is not None:
        return (f"{kind} takes no argument: to command the bot {argument}, python -m bot "
                f"command {kind} --bot {argument}; nothing was queued")
    return f"{kind} takes no argument; nothing was queued"


def cmd_bots(args: argparse.Namespace) -> int:
    from datetime import datetime

    from bot.fleet import fleet_states, format_table
    from db.migrate import upgrade

    url = _existing_db_url(args)
    upgrade(url)  # a single-bot database is listed as its 'default' bot, not an error
    with session_factory(make_engine(url))() as db:
        entries = fleet_states(db, datetime.now(UTC))
    if args.json:
        print(json.dumps([e.as_dict() for e in entries]))
    else:
        print(format_table(entries))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from bot.audit import as_json, audit

    with session_factory(make_engine(_existing_db_url(args)))() as db:
        report = as_json(audit(db))
    if args.json:
        print(json.dumps(report))
    else:
        for check in report["checks"]:
            print(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']} {check['detail']}")
    return 0 if report["ok"] else 1


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import datetime

    from bot.lock import BotAlreadyRunning
    from bot.replay import ReplayArgs, run_replay
    from bot.venue.feeds import FeedError

    def when(flag: str, text: str | None) -> datetime | None:
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"invalid --{flag}: {text!r} is not an ISO date or time, "
                              "e.g. 2024-01-31 or 2024-01-31T12:00") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    recording = _recording(args)
    start, end = when("start", args.start), when("end", args.end)
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"invalid --end: {args.end} is not after --start {args.start}")
    paths = [Path(p.strip()) for p in args.candles.split(",") if p.strip()]
    url = _checked_url(args.db or "sqlite:///data/replays.db")
    _refuse_no_database(url, "--db")
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    options = {flag: getattr(args, flag.replace("-", "_")) for flag in REPLAY_OPTIONS}
    try:
        summary = run_replay(
            ReplayArgs(candles=paths, db_url=url, engine=args.engine, start=start,
                       end=end, balance=args.balance, recording=recording,
                       record=bool(args.record), overrides=replay_overrides(options)),
            progress=not args.json,
        )
    except FeedError as exc:
        print(f"replay input error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BotAlreadyRunning as exc:
        print(f"replay run {exc} is already running against this database; not starting a "
              f"second one (stop it: python -m bot command stop --bot {exc} --db URL)",
              file=sys.stderr)
        return EXIT_LOCKED
    if args.json:
        print(json.dumps(summary))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key.replace('_', ' '):<{width}}  {value}")
    return 0


def _recording(args: argparse.Namespace) -> Path | None:
    """The replay's file of LLM answers; a ConfigError for one the run would not use (the
    rules engine asks no model) or for two files given (one is served or written)."""
    if args.record and args.recording:
        raise ConfigError("give --record or --recording, not both: --record asks the API at "
                          "every decision, --recording serves the answers already in its file")
    given = args.record or args.recording
    if given is None:
        return None
    if args.engine == "rules":
        flag = ("--record asks an LLM at every decision" if args.record else
                "--recording serves an LLM's recorded answers")
        raise ConfigError(f"{flag}, and --engine rules asks no model: give --engine gemini, "
                          "openai or anthropic with it, or leave it out")
    return Path(given)


def cmd_telegram(args: argparse.Namespace) -> int:
    from bot.telegram import serve

    settings = load_settings(DATABASE_URL=_existing_db_url(args))
    serve(settings)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from bot.mcp_server import serve

    settings = load_settings(DATABASE_URL=_existing_db_url(args))
    serve(settings, http=(args.host, args.port) if args.http else None)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Alert on bots gone stale or crashed, once per incident and again on recovery."""
    import threading

    from bot.alerts.watch import FleetWatch, load_incidents, save_incidents, watch_fleet
    from bot.secrets_filter import install_log_scrubber
    from db.migrate import upgrade

    url = _existing_db_url(args)
    settings = load_settings(DATABASE_URL=url)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_scrubber(settings.secret_values())
    # a look from cron is a new process: the incidents it told wait in a file for the next
    state = Path(args.state)
    if args.once and state.is_dir():  # found at its save, after the look had told them
        raise ConfigError(f"--state: {state} is a directory, not the file the incidents a "
                          "look told are kept in")
    watch = FleetWatch.from_settings(settings, load_incidents(state) if args.once else None)
    if watch is None:
        print("watch needs NOTIFY_URLS: the apprise URL(s) to alert", file=sys.stderr)
        return EXIT_CONFIG
    upgrade(url)
    stop = threading.Event()
    if args.once:
        stop.set()  # one sweep
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        watch_fleet(session_factory(make_engine(url)), watch, every=args.every, stop=stop)
    except KeyboardInterrupt:
        pass
    finally:
        watch.close()
        if args.once:
            save_incidents(state, watch.down)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bot.report import run

    return run(args, _usable_db_url(args), args.bot or os.environ.get("BOT_NAME") or "default")


def cmd_prune(args: argparse.Namespace) -> int:
    from bot.prune import run_prune

    return run_prune(_existing_db_url(args), args.days, args.dry_run)


def cmd_replay_live(args: argparse.Namespace) -> int:
    from bot.live_diff import run_replay_live

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    return run_replay_live(_existing_db_url(args), args)


def _above_zero(text: str) -> float:
    """``--every``: seconds a loop waits, so above 0 (0 or less waits not at all)."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def _count(text: str) -> int:
    """``--iterations``: at least one."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def _port(text: str) -> int:
    value = _number(text, int)
    if not 1 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1 to {MAX_PORT})")
    return value


def _number[N: (int, float)](text: str, kind: type[N]) -> N:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line. A subcommand's positionals may also follow its options
    (``command close --db URL BTC/USDT``): argparse takes them only before, unless its
    parser reads them intermixed, which a parser of subcommands cannot."""
    root, subcommands = parser()
    args, extras = root.parse_known_args(argv)
    if not extras:
        return args
    words = sys.argv[1:] if argv is None else argv
    # the root takes no option but --help, so the subcommand is the first word
    return subcommands[words[0]].parse_intermixed_args(words[1:])


def parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The root parser, and each subcommand's by its name."""
    root = argparse.ArgumentParser(prog="python -m bot", description="Tradedesk bot")
    sub = root.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the trading loop in the foreground")
    run.add_argument("--db", help="database URL (default: DATABASE_URL or data/tradedesk.db)")
    run.add_argument("--name", help="bot name (default: BOT_NAME or 'default')")
    run.add_argument("--iterations", type=_count, help="stop after N iterations")
    run.set_defaults(func=cmd_run)
    command = sub.add_parser("command", help="queue an operator command")
    command.add_argument("name", type=str.lower, choices=[str(kind) for kind in CommandKind],
                         help="stop | close-all | pause | resume | close | cancel")
    command.add_argument("argument", nargs="?", help="symbol for close, order id for cancel")
    command.add_argument("--db", help="database URL")
    target = command.add_mutually_exclusive_group()
    target.add_argument("--bot", help="the bot to command (default: BOT_NAME or 'default')")
    target.add_argument("--all", action="store_true", help="one command for every bot")
    command.set_defaults(func=cmd_command)
    bots = sub.add_parser("bots", help="list every bot with its state")
    bots.add_argument("--db", help="database URL")
    bots.add_argument("--json", action="store_true", help="print one JSON array")
    bots.set_defaults(func=cmd_bots)
    check = sub.add_parser("audit", help="check the database's invariants")
    check.add_argument("--db", help="database URL")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(func=cmd_audit)
    watch = sub.add_parser("watch", help="alert (NOTIFY_URLS) on stale or crashed bots")
    watch.add_argument("--db", help="database URL")
    watch.add_argument("--every", type=_above_zero, default=15.0,
                       help="seconds between looks")
    watch.add_argument("--once", action="store_true", help="look once, then exit")
    watch.add_argument("--state", default="data/watch-incidents.json",
                       help="where --once keeps the incidents it told for its next look")
    watch.set_defaults(func=cmd_watch)
    replay = sub.add_parser("replay", help="run the live loop over recorded candles")
    replay.add_argument("--candles", required=True, help="candle CSV path(s), comma-separated")
    replay.add_argument("--db", help="database URL (default: sqlite:///data/replays.db)")
    replay.add_argument("--engine", choices=["rules", "gemini", "openai", "anthropic"],
                        default="rules")
    replay.add_argument("--start", help="ISO time to start at")
    replay.add_argument("--end", help="ISO time to end at")
    replay.add_argument("--balance", type=float, default=10_000.0, help="starting quote balance")
    for flag, setting in REPLAY_OPTIONS.items():  # validated as the setting is, and named
        replay.add_argument(f"--{flag}", metavar="VALUE",
                            help=f"the {setting} setting for this run (default: as configured)")
    replay.add_argument("--json", action="store_true", help="summary as one JSON line, no bar")
    replay.add_argument("--recording", help="an LLM: replay answers recorded in this file "
                        "(new requests call the API, with a key, and are appended)")
    replay.add_argument("--record", help="an LLM: call the API for every decision and append "
                        "the answers to this file")
    replay.set_defaults(func=cmd_replay)
    telegram = sub.add_parser("telegram", help="answer and command the bots from Telegram")
    telegram.add_argument("--db", help="database URL")
    telegram.set_defaults(func=cmd_telegram)
    mcp = sub.add_parser("mcp", help="serve the Model Context Protocol to AI agents")
    mcp.add_argument("--db", help="database URL")
    mcp.add_argument("--http", action="store_true",
                     help="streamable HTTP at /mcp (needs MCP_TOKEN) instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP address (default: 127.0.0.1)")
    mcp.add_argument("--port", type=_port, default=8765, help="HTTP port (default: 8765)")
    mcp.set_defaults(func=cmd_mcp)
    from bot.report import add_parser as add_report

    add_report(sub)
    sub.choices["report"].set_defaults(func=cmd_report)
    add_prune_parser(sub, cmd_prune)
    live = sub.add_parser("replay-live", help="replay a live day and diff it against live")
    live.add_argument("--db", help="database URL (default: DATABASE_URL or data/tradedesk.db)")
    live.add_argument("--bot", required=True, help="the live bot's name")
    live.add_argument("--day", required=True, help="the live day, YYYY-MM-DD")
    live.add_argument("--recording", help="the LLM answers to serve (default: the live run's "
                      "LLM_RECORDING)")
    live.add_argument("--json", action="store_true", help="the diff as one JSON line")
    live.set_defaults(func=cmd_replay_live)
    return root, sub.choices


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DatabaseError as exc:  # not ours, too new: the message names the database
        print(f"database error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OperationalError as exc:  # say which database, no traceback
        if is_outage(exc):  # down, locked or full: not a setting; a later try may work
            print(f"database unreachable: {shown(_db_url(args))}: {described(exc)}",
                  file=sys.stderr)
            return EXIT_UNREACHABLE
        print(f"database error: {shown(_db_url(args))}: {exc.orig}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
