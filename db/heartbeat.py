"""The bot's heartbeat row, which the console reads to tell running from stale or crashed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session as OrmSession

from db.bots import register_bot
from db.models import BotStatus


def status_row(db: OrmSession, name: str) -> BotStatus:
    row = db.scalars(select(BotStatus).where(BotStatus.name == name)).one_or_none()
    if row is None:
        row = BotStatus(name=name)
        db.add(row)
        db.flush()
    return row


def keep_paused(db: OrmSession, name: str, paused: bool) -> None:
    """Record, uncommitted, whether the bot is paused: a restart takes it from this row, so
    a pause commits with the command that made it, not with the next heartbeat."""
    status_row(db, name).paused = paused


def keep_stopped(db: OrmSession, name: str) -> None:
    """Record, uncommitted, that the operator's STOP was carried out: it commits with the
    command, so a bot killed after it, before or while it exits, is left stopped by its
    supervisor (``bot.supervisor.Supervisor.tick``) instead of restarted."""
    status_row(db, name).state = "stopped"


def heartbeat(db: OrmSession, bot_name: str) -> dict | None:
    """The bot's heartbeat row as a dict (the supervisor and the sidebar turn it into a state)."""
    row = db.scalars(select(BotStatus).where(BotStatus.name == bot_name)).one_or_none()
    if row is None:
        return None
    return {c.key: getattr(row, c.key) for c in BotStatus.__table__.columns}


def counted_loop() -> ColumnElement[int]:
    """The row's loop count plus one, as SQL: the caller need not read the row for its count
    before the beat (the beat itself still loads the row, ``status_row``)."""
    return func.coalesce(BotStatus.loop_count, 0) + 1


def beat(db: OrmSession, name: str, now: datetime, **fields: object) -> None:
    row = status_row(db, name)
    for key, value in fields.items():
        setattr(row, key, value)
    row.heartbeat_at = now
    # the same beat registers the bot at start and keeps its ``bots`` row's last_seen fresh
    register_bot(db, name, now, **fields)
    db.commit()
