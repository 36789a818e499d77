"""The fleet in the store: register bots, resolve names, and read one row per bot.

A bot's identity is its name; its ``bots`` row owns its sessions and receives its commands.
The bot writes its row from the heartbeat (``db.heartbeat.beat``), so every place that
already beats registers and refreshes the bot without knowing about the fleet.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.vocabulary import RunKind
from db.models import Bot, BotStatus, Position, Session

DEFAULT_BOT = "default"
# heartbeat fields that describe the bot itself; copied onto its ``bots`` row
BOT_FIELDS = ("mode", "venue", "symbols", "engine", "host", "pid")


class UnknownBot(LookupError):
    """A command or a page named a bot that is not registered in this database."""


def register_replay(db: OrmSession, run_name: str, now: datetime) -> None:
    """Register a replay run under its name, to take the commands addressed to it, apart
    from the fleet's bots (no commit: the caller's unit); its beats keep the kind."""
    if bot_id(db, run_name) is None:
        db.add(Bot(name=run_name, created_at=now, kind=RunKind.REPLAY))
        db.flush()


def bot_id(db: OrmSession, name: str) -> int | None:
    return db.scalar(select(Bot.id).where(Bot.name == name))


def require_bot_id(db: OrmSession, name: str) -> int:
    """The id of the bot or replay run named ``name``, or UnknownBot naming those that exist."""
    found = bot_id(db, name)
    if found is None:
        known = ", ".join(bot_names(db)) or "none"
        replays = bot_names(db, RunKind.REPLAY)
        runs = f"; replay runs: {', '.join(replays)}" if replays else ""
        raise UnknownBot(f"no bot named {name!r} in this database (bots: {known}{runs})")
    return found


def close_refusal(db: OrmSession, name: str, symbol: str) -> str | None:
    """Why the bot ``name`` would refuse to close ``symbol``, said before the command is
    queued: it closes only a symbol it trades (its SYMBOLS, as its heartbeat recorded them,
    in any case). None when it trades it, or has recorded none yet."""
    recorded = db.scalar(select(Bot.symbols).where(Bot.name == name)) or ""
    traded = [item.strip() for item in recorded.split(",") if item.strip()]
    if not traded or symbol.strip().upper() in traded:
        return None
    return (f"bot {name!r} trades {', '.join(traded)}, not {symbol!r}; close takes one of "
            "its symbols")


def has_run(db: OrmSession, name: str) -> bool:
    """Whether the bot or replay run ``name`` ever beat on this database (a database moved
    from a single bot registers ``default`` with its sessions, before any beat of it)."""
    return db.scalar(select(Bot.last_seen_at).where(Bot.name == name)) is not None


def bot_names(db: OrmSession, kind: RunKind = RunKind.LIVE) -> list[str]:
    """The fleet's bots by name (or, with ``kind``, the replay runs that take commands)."""
    return list(db.scalars(select(Bot.name).where(Bot.kind == kind).order_by(Bot.name)))


def register_bot(db: OrmSession, name: str, now: datetime, **fields: object) -> Bot:
    """Create or resume the bot's row and mark it seen now (no commit: the caller's unit)."""
    row = db.scalars(select(Bot).where(Bot.name == name)).one_or_none()
    if row is None:
        row = Bot(name=name, created_at=now, kind=RunKind.LIVE)
        db.add(row)
    for key in BOT_FIELDS:
        if key in fields:
            setattr(row, key, fields[key])
    row.last_seen_at = now
    db.flush()
    return row


@dataclass(frozen=True)
class FleetRow:
    """One bot as the store knows it: its row, its heartbeat and its current day."""

    name: str
    mode: str
    venue: str
    engine: str
    symbols: str
    host: str | None
    pid: int | None
    created_at: datetime
    last_seen_at: datetime | None
    heartbeat: dict | None  # the bot_status columns, for bot.supervisor.classify
    session_date: date | None
    # the SESSION_TIMEZONE its newest day was recorded with (UTC, the default, when that
    # day predates recorded settings): whether that day is today is a day in this zone
    session_timezone: str
    net_pnl: float
    open_positions: int

    def as_dict(self) -> dict:
        return asdict(self)


def fleet(db: OrmSession) -> list[FleetRow]:
    """Every live bot by name (replay runs are no bots of the fleet), with its heartbeat,
    newest session's PnL and positions.

    Positions are the newest live session's snapshot (the loop rewrites it there), so older
    days' snapshots do not count twice.
    """
    newest = (
        select(Session.bot_id, func.max(Session.id).label("session_id"))
        .where(Session.kind == "live", Session.bot_id.is_not(None))
        .group_by(Session.bot_id)
        .subquery()
    )
    current = {
        r.bot_id: r for r in db.execute(
            select(newest.c.bot_id, Session.id, Session.date, Session.net_pnl, Session.settings)
            .join(Session, Session.id == newest.c.session_id)
        )
    }
    positions = dict(
        db.execute(
            select(Position.session_id, func.count(Position.id))
            .where(Position.session_id.in_([r.id for r in current.values()]),
                   Position.quantity != 0)
            .group_by(Position.session_id)
        ).all()
    )
    beats = {
        row.name: {c.key: getattr(row, c.key) for c in BotStatus.__table__.columns}
        for row in db.scalars(select(BotStatus))
    }
    rows = []
    for bot in db.scalars(select(Bot).where(Bot.kind == RunKind.LIVE).order_by(Bot.name)):
        day = current.get(bot.id)
        rows.append(FleetRow(
            name=bot.name, mode=bot.mode, venue=bot.venue, engine=bot.engine,
            symbols=bot.symbols, host=bot.host, pid=bot.pid, created_at=bot.created_at,
            last_seen_at=bot.last_seen_at, heartbeat=beats.get(bot.name),
            session_date=day.date if day else None,
            session_timezone=recorded_timezone(day.settings if day else None),
            net_pnl=float(day.net_pnl) if day else 0.0,
            open_positions=int(positions.get(day.id, 0)) if day else 0,
        ))
    return rows


def recorded_timezone(settings: str | None) -> str:
    """The SESSION_TIMEZONE of a session's recorded settings (``sessions.settings``); UTC,
    the setting's default, for a session recorded without them."""
    record = json.loads(settings) if settings else {}
    return str(record.get("session_timezone") or "UTC")


def bot_session_ids(db: OrmSession, name: str) -> list[int]:
    """Every session of one bot (the console scopes its pages to these)."""
    return list(
        db.scalars(select(Session.id).join(Bot, Bot.id == Session.bot_id).where(Bot.name == name))
    )


def session_scope(name: str) -> ColumnElement[bool]:
    """What the console shows for one picked bot: its sessions, plus replays (no bot's).

    Replays belong to no bot, so they stay reachable whichever bot is picked; a newest
    live session is still only ever the picked bot's (callers order live first).
    """
    mine = Session.bot_id == select(Bot.id).where(Bot.name == name).scalar_subquery()
    return or_(mine, and_(Session.bot_id.is_(None), Session.kind == "replay"))


def session_bot(db: OrmSession, session_id: int) -> str | None:
    """The name of the bot a session belongs to; None for a replay (no bot's)."""
    return db.scalar(
        select(Bot.name).join(Session, Session.bot_id == Bot.id).where(Session.id == session_id)
    )
