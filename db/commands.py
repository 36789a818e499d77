"""The one write the console (and the CLI) makes: queue a command for the bot."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession

from db.models import Command

KNOWN_COMMANDS = ("stop", "close-all", "pause", "resume", "close", "cancel")


def enqueue_command(db: OrmSession, command: str, argument: str | None = None) -> int:
    """Insert a pending command and return its id; the bot validates and executes it."""
    row = Command(command=command.strip().lower(), argument=argument, status="pending")
    db.add(row)
    db.commit()
    return row.id
