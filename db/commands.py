"""The one write the console (and the CLI) makes: queue a command for the bot."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from db.models import Command

KNOWN_COMMANDS = ("stop", "close-all", "pause", "resume", "close", "cancel")


def enqueue_command(db: OrmSession, command: str, argument: str | None = None) -> int:
    """Insert a pending command and return its id; the bot validates and executes it."""
    row = Command(command=command.strip().lower(), argument=argument, status="pending")
    db.add(row)
    db.commit()
    return row.id


def pending_commands(db: OrmSession, limit: int = 100) -> list[Command]:
    """Oldest first, so a flood is worked through in order without starving anything."""
    return list(
        db.scalars(
            select(Command).where(Command.status == "pending").order_by(Command.id).limit(limit)
        )
    )


def has_pending(db: OrmSession, names: tuple[str, ...] | None = None) -> bool:
    query = select(Command.id).where(Command.status == "pending")
    if names is not None:
        query = query.where(Command.command.in_(names))
    return db.scalar(query.limit(1)) is not None


def finish_command(db: OrmSession, command: Command, status: str, result: str, now) -> None:
    command.status = status
    command.result = result
    command.executed_at = now
    db.commit()
