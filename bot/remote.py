"""What an operator away from the console may read and ask, for Telegram and MCP alike.

Reads are the console's own queries (``db.queries*``, ``bot.fleet``), turned into plain
JSON-safe values; the one write is queueing a command, exactly as the console's buttons do
(``db.commands.enqueue_command``), so the bot validates and carries it out as any other.
A bot is named, or implied when the database has only one; with several and none named the
caller is told which there are (``AmbiguousBot``) rather than guessing.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession

from bot.fleet import fleet_states
from bot.model.vocabulary import CommandKind, RunKind
from bot.secrets_filter import scrub
from db.bots import UnknownBot, bot_names, require_bot_id, session_bot
from db.commands import enqueue_command
from db.performance import report
from db.performance_rollups import session_trips
from db.queries import SessionInfo, open_exposure, overview_figures, session_info
from db.queries_trading import TradeFilter, active_plans, trace_detail, traces, trades
from db.retry import described, is_outage
from db.stats import figures_from_rows

# The commands a remote operator may queue; close and cancel need an argument picked off a
# page, and stay the console's.
REMOTE_COMMANDS = (CommandKind.PAUSE, CommandKind.RESUME, CommandKind.CLOSE_ALL, CommandKind.STOP)
MAX_ROWS = 100  # a listing a phone or an agent can take in
log = logging.getLogger("tradedesk.remote")


class NotTheBots(LookupError):
    """A record named by its id is another bot's, or a replay's, not the named bot's."""


class AmbiguousBot(LookupError):
    """Several bots share the database and none was named."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"several bots run on this database; name one of: {', '.join(names)}")
        self.names = names


def database_trouble(exc: DBAPIError) -> str:
    """A database failure in words for a remote operator, also logged; no SQL, no
    traceback. A command it interrupted was not queued."""
    log.warning("remote control: %s", described(exc))
    if is_outage(exc):
        return f"Database unreachable ({described(exc)}); nothing was queued, try again shortly."
    return f"Database error ({described(exc)}); nothing was queued."


def pick_bot(db: OrmSession, name: str | None) -> str:
    """The named bot (``UnknownBot`` naming those that exist), else the only one."""
    if name:
        require_bot_id(db, name)
        return name
    names = bot_names(db)
    if not names:
        raise UnknownBot("no bot has registered in this database yet")
    if len(names) > 1:
        raise AmbiguousBot(names)
    return names[0]


def plain(value: Any) -> Any:
    """``value`` as JSON types: datetimes in ISO form, frames (also within a dict) as lists
    of records."""
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return json.loads(json.dumps(value, default=_iso))


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def fleet(db: OrmSession, now: datetime) -> list[dict[str, Any]]:
    """Every bot with its state word, as ``python -m bot bots --json`` prints it."""
    return [entry.as_dict() for entry in fleet_states(db, now)]


def status(db: OrmSession, bot: str, now: datetime) -> dict[str, Any]:
    """The bot's fleet line (state, heartbeat age, mode, venue, last error); UnknownBot for
    a replay run, which takes commands under its name but is no bot of the fleet."""
    found = next((entry for entry in fleet(db, now) if entry["name"] == bot), None)
    if found is None:
        raise UnknownBot(_a_replay_run(bot))
    return found


def _a_replay_run(name: str) -> str:
    return (f"{name!r} is a replay run, not a bot of the fleet: it has no state (the "
            "console's Replays page shows its figures)")


def _live_session(db: OrmSession, bot: str) -> SessionInfo | None:
    """The bot's newest live session. The console falls back to a replay for a bot with
    none, and labels it so; a remote answer names the bot alone, so a replay's holdings,
    plans and PnL would read as the bot's own. A replay run's name is UnknownBot: its
    reads would answer none (flat, no trades) whatever it held."""
    info = session_info(db, bot=bot)
    if info is not None and info.kind == "live":
        return info
    if bot in bot_names(db, RunKind.REPLAY):
        raise UnknownBot(_a_replay_run(bot))
    return None


def pnl(db: OrmSession, bot: str) -> dict[str, Any] | None:
    """The current session's figures as the Overview shows them; None before any session."""
    info = _live_session(db, bot)
    if info is None:
        return None
    return {"session": info.label, "mode": info.mode, **overview_figures(db, info)}


def positions(db: OrmSession, bot: str) -> list[dict[str, Any]]:
    info = _live_session(db, bot)
    return plain(open_exposure(db, info.id)) if info else []


def plans(db: OrmSession, bot: str) -> list[dict[str, Any]]:
    info = _live_session(db, bot)
    return plain(active_plans(db, info.run_session_ids)) if info else []


def recent_trades(db: OrmSession, bot: str, limit: int = 10) -> list[dict[str, Any]]:
    """Newest first, across the bot's run."""
    info = _live_session(db, bot)
    if info is None:
        return []
    return plain(trades(db, TradeFilter(info.run_session_ids), limit=min(limit, MAX_ROWS)))


def decisions(db: OrmSession, bot: str, limit: int = 20) -> list[dict[str, Any]]:
    """The current session's decision list, newest first (no prompts)."""
    info = _live_session(db, bot)
    return plain(traces(db, info.id, limit=min(limit, MAX_ROWS))) if info else []


def trace(db: OrmSession, bot: str, trace_id: int) -> dict[str, Any] | None:
    """One of the bot's decisions in full, with the trades, plans and orders it caused;
    None when there is no such trace, ``NotTheBots`` when it is another bot's or a
    replay's (an id is any run's, and would read as this bot's)."""
    detail = trace_detail(db, trace_id)
    if detail is None:
        return None
    info = _live_session(db, bot)
    if info is None or detail["session_id"] not in info.run_session_ids:
        raise NotTheBots(f"decision trace #{trace_id} "
                         f"{_whose(db, detail['session_id'])}, not of bot {bot!r}")
    return plain(detail)


def _whose(db: OrmSession, session_id: int) -> str:
    """Whose run a session is, in words: a bot's (to be named to read it) or a replay's."""
    info = session_info(db, session_id)
    if info is None or info.kind != "live":
        return (f"is of a replay run ({info.run_name if info else 'gone'}); the console's "
                "Replays page shows it")
    owner = session_bot(db, session_id) or info.run_name
    return f"is of bot {owner!r} (name that bot to read it)"


def scrubbed[T](answer: T, secrets: list[str]) -> T:
    """``answer`` (JSON values) with every secret and request signature masked in every
    string: what the bot stored is scrubbed already, and this makes sure of it."""
    return json.loads(scrub(json.dumps(answer), secrets))


def performance(db: OrmSession, bot: str) -> dict[str, Any]:
    """The bot's figures over its whole run as ``python -m bot report`` prints them
    (``metrics``, ``by_symbol``, ``by_month``; the round trips are their own tool), and per
    day and in total: trades, fees, gross and net PnL, LLM cost, from the rows themselves
    (``db.stats``), and the round trips each day closed, won and lost after fees, as the
    Overview counts them (``session_trips``); the win rate is None before one closes."""
    info = _live_session(db, bot)
    run = info.run_session_ids if info else ()
    days = []
    for session_id in run:
        figures = figures_from_rows(db, session_id).as_dict()
        figures.pop("last_trade_row_id")
        figures["net_pnl"] = figures["gross_pnl"] - figures["total_fees"] - figures[
            "total_llm_cost"]
        trips = session_trips(db, run, session_id)
        figures.update(round_trips=trips.count, wins=trips.wins, losses=trips.losses)
        days.append({"session_id": session_id, **figures})
    total: dict[str, float | None] = {
        key: sum(day[key] for day in days)
        for key in ("total_trades", "total_fees", "gross_pnl", "total_llm_cost", "net_pnl",
                    "round_trips", "wins", "losses")}
    trips_closed = total["round_trips"] or 0
    total["win_rate"] = (total["wins"] or 0) / trips_closed if trips_closed else None
    figures = report(db, run) if days else {}
    figures.pop("round_trips", None)
    return {"bot": bot, **plain(figures), "days": days, "total": total}


def round_trips(db: OrmSession, bot: str, limit: int = 20) -> list[dict[str, Any]]:
    """The bot's newest ``limit`` round trips (entry through last exit, ``db.round_trips``),
    newest last."""
    info = _live_session(db, bot)
    if info is None or not info.run_session_ids:
        return []
    return plain(report(db, info.run_session_ids)["round_trips"][-limit:])


def queue(db: OrmSession, kind: CommandKind, bot: str) -> int:
    """Queue ``kind`` for ``bot``, as the console's button does; the command's id."""
    if kind not in REMOTE_COMMANDS:
        raise ValueError(f"{kind} is not a remote command")
    return enqueue_command(db, kind, None, bot)
