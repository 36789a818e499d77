"""Several bots on one database: each bot's order prefix, and the fleet's state.

A bot only ever cancels, closes or books orders and fills whose client order id carries
its prefix, so two bots on one exchange account keep out of each other's way as long as
their prefixes differ. The prefix is therefore derived from the bot's name (unless
CLIENT_ORDER_PREFIX is set explicitly), and the ``default`` bot keeps the historical
``td`` so a database from before several bots continues with the same orders.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy.orm import Session as OrmSession

from bot.config import Settings
from bot.model.figures import figure
from bot.supervisor import RUNNING_STATES, BotState, classify, pid_alive
from db.bots import DEFAULT_BOT, FleetRow, fleet
from db.sessions import trading_day

PREFIX_ROOT = "td"
PREFIX_MAX = 12  # CLIENT_ORDER_PREFIX's own limit


@cache  # asked for by every order and resync; the name never changes
def prefix_for(name: str) -> str:
    """``td`` + the name when it is short and alphanumeric, else a truncation plus a hash.

    The hash keeps names that differ only in ``-``/``_`` or beyond the tenth character
    apart (``a-b`` and ``ab`` would otherwise share ``tdab``).
    """
    if name == DEFAULT_BOT:
        return PREFIX_ROOT
    core = "".join(ch for ch in name if ch.isalnum())
    if core == name and len(PREFIX_ROOT + core) <= PREFIX_MAX:
        return PREFIX_ROOT + core
    digest = hashlib.sha1(name.encode()).hexdigest()[:4]
    return PREFIX_ROOT + core[: PREFIX_MAX - len(PREFIX_ROOT) - len(digest)] + digest


def order_prefix(settings: Settings) -> str:
    """CLIENT_ORDER_PREFIX when set explicitly, else the bot name's own prefix."""
    if "client_order_prefix" in settings.model_fields_set:
        return settings.client_order_prefix
    return prefix_for(settings.bot_name)


def client_id_of(order: dict[str, Any]) -> str | None:
    """The client order id a venue order or fill carries (venues put it in different places);
    its prefix says whose it is."""
    info = order.get("info") or {}
    return order.get("clientOrderId") or info.get("clientOrderId") or info.get("client_order_id")


@dataclass(frozen=True)
class FleetEntry:
    """One line of ``python -m bot bots`` and of the console's Fleet page."""

    row: FleetRow
    state: BotState
    # whether the bot's newest day is today in its SESSION_TIMEZONE; only such a day's PnL
    # is the bot's today (a bot stopped days ago shows its last day, said to be so)
    day_is_today: bool

    def as_dict(self) -> dict:
        return {
            "name": self.row.name, "state": self.state.state, "host": self.row.host,
            "pid": self.row.pid,
            "heartbeat_age_s": (None if self.state.heartbeat_age_s is None
                                else round(self.state.heartbeat_age_s, 1)),
            "mode": self.row.mode, "venue": self.row.venue, "engine": self.row.engine,
            "symbols": self.row.symbols,
            # where its prices come from, as the bot last recorded it (None: not yet)
            "feed": (self.row.heartbeat or {}).get("feed"),
            "session_date": self.row.session_date.isoformat() if self.row.session_date else None,
            "day_is_today": self.day_is_today,
            "net_pnl": round(self.row.net_pnl, 8), "open_positions": self.row.open_positions,
            "last_error": self.state.last_error,
            # notifications the bot could not deliver (NOTIFY_URLS; None: none configured)
            "notify_failures": (self.row.heartbeat or {}).get("notify_failures"),
        }


def fleet_states(db: OrmSession, now: datetime) -> list[FleetEntry]:
    """Every bot with the supervisor's state word.

    Whether the process lives is only checked for bots on this host; elsewhere the
    heartbeat's age decides (running, or stale once it is too old).
    """
    here = socket.gethostname()
    entries = []
    for row in fleet(db):
        beat = row.heartbeat
        alive = None
        if beat and beat.get("pid") and beat.get("host") == here:
            alive = pid_alive(int(beat["pid"]))
        today = trading_day(now, row.session_timezone)
        entries.append(FleetEntry(row=row, state=classify(beat, now, process_alive=alive),
                                  day_is_today=row.session_date == today))
    return entries


def totals(entries: list[FleetEntry]) -> dict[str, Any]:
    """Across the fleet: bots, bots up (their process runs: a stopping bot's still exits),
    net PnL today per quote currency (a bot counts its PnL in its symbols' one quote
    currency: BTC and USDT do not add up; a bot with no session today adds nothing), open
    positions."""
    pnl: dict[str, float] = {}
    for entry in entries:
        if entry.day_is_today:
            # "" for a bot that has not said its symbols yet
            quote = entry.row.symbols.split(",")[0].partition("/")[2].strip()
            pnl[quote] = round(pnl.get(quote, 0.0) + entry.row.net_pnl, 8)
    return {
        "bots": len(entries),
        "up": sum(1 for e in entries if e.state.state in RUNNING_STATES),
        "net_pnl": pnl,
        "open_positions": sum(e.row.open_positions for e in entries),
    }


def format_table(entries: list[FleetEntry]) -> str:
    """Plain columns for a terminal."""
    header = ("NAME", "STATE", "HOST", "PID", "AGE", "MODE", "VENUE", "DAY", "NET PNL", "POS")
    lines: list[tuple[str, ...]] = [header]
    for e in entries:
        d = e.as_dict()
        age = "-" if d["heartbeat_age_s"] is None else f"{d['heartbeat_age_s']:.0f}s"
        # the day its net PnL is of: a bot with no session today shows its last day's date
        day = "today" if d["day_is_today"] else (d["session_date"] or "-")
        lines.append((d["name"], d["state"], d["host"] or "-", str(d["pid"] or "-"), age,
                      d["mode"], d["venue"], day, figure(d["net_pnl"]), str(d["open_positions"])))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)
