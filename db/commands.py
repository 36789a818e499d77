"""The one write the console (and the CLI) makes: queue a command for a bot.

Every command is addressed to one bot (its ``bots`` row); "all bots" is one row per bot, so
each bot reports its own result. On PostgreSQL the insert also sends ``NOTIFY`` on
``COMMANDS_CHANNEL`` with the bot's name, delivered at commit, so a listening bot acts at
once instead of at its next poll (``bot.notify``); polling stays the fallback.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Integer, bindparam, select, text
from sqlalchemy.orm import Session as OrmSession

from bot.model.vocabulary import CommandKind
from db.bots import DEFAULT_BOT, bot_names, require_bot_id
from db.models import Bot, Command

KNOWN_COMMANDS = tuple(CommandKind)
COMMANDS_CHANNEL = "tradedesk_commands"
# An argument is a symbol or an order id; a result is a line or two for the operator.
MAX_ARGUMENT_CHARS = 200
MAX_RESULT_CHARS = 2000


class ArgumentTooLong(ValueError):
    """A command's argument is longer than any symbol or order id (``MAX_ARGUMENT_CHARS``)."""

    def __init__(self, argument: str) -> None:
        super().__init__(f"the command's argument is {len(argument):,} characters long; "
                         f"at most {MAX_ARGUMENT_CHARS} (a symbol or an order id)")


def check_argument(argument: str | None) -> None:
    """Raise ``ArgumentTooLong`` for an argument no command can take."""
    if argument is not None and len(argument) > MAX_ARGUMENT_CHARS:
        raise ArgumentTooLong(argument)


def enqueue_command(
    db: OrmSession, command: str, argument: str | None = None, bot: str = DEFAULT_BOT
) -> int:
    """Insert a pending command for ``bot`` and return its id; the bot validates it.

    Raises ``db.bots.UnknownBot`` for a name that is not registered, so a typo is an error
    instead of a command nobody will ever take, and ``ArgumentTooLong``.
    """
    row = _add(db, command, argument, bot)
    db.commit()
    return row.id


def enqueue_for_all(db: OrmSession, command: str, argument: str | None = None) -> dict[str, int]:
    """One pending command per registered bot, in one transaction; name → command id."""
    rows = {name: _add(db, command, argument, name) for name in bot_names(db)}
    db.commit()
    return {name: row.id for name, row in rows.items()}


def _add(db: OrmSession, command: str, argument: str | None, bot: str) -> Command:
    check_argument(argument)
    row = Command(command=command.strip().lower(), argument=argument, status="pending",
                  bot_id=require_bot_id(db, bot))
    db.add(row)
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_notify(:channel, :bot)"),
                   {"channel": COMMANDS_CHANNEL, "bot": bot})
    return row


def _for_bot(bot: str | None) -> ColumnElement[bool] | None:
    """None: every bot's (the console's history); else only the named bot's commands."""
    if bot is None:
        return None
    return Command.bot_id == select(Bot.id).where(Bot.name == bot).scalar_subquery()


_PENDING = select(Command).where(Command.status == "pending")
# Built once: the loop asks at every iteration and building the select cost more than the
# (almost always empty) query.
_PENDING_OF_ANY = _PENDING.order_by(Command.id).limit(bindparam("limit", type_=Integer))
_BOT_ID_OF_NAME = select(Bot.id).where(Bot.name == bindparam("bot")).scalar_subquery()
_PENDING_OF_BOT = (_PENDING.where(Command.bot_id == _BOT_ID_OF_NAME)
                   .order_by(Command.id).limit(bindparam("limit", type_=Integer)))


def pending_commands(db: OrmSession, limit: int = 100, bot: str | None = None) -> list[Command]:
    """Oldest first, so a flood is worked through in order without starving anything."""
    if bot is None:
        return list(db.scalars(_PENDING_OF_ANY, {"limit": limit}))
    return list(db.scalars(_PENDING_OF_BOT, {"limit": limit, "bot": bot}))


# Built once: the loop asks at every iteration whether its bot has anything pending.
_ANY_PENDING_OF_BOT = (select(Command.id).where(Command.status == "pending",
                                                Command.bot_id == _BOT_ID_OF_NAME)
                       .limit(1))
# a command not tried yet (``retry_later`` leaves its reason on the ones that were)
_UNTRIED_OF_BOT = _ANY_PENDING_OF_BOT.where(Command.result.is_(None))


def has_pending(
    db: OrmSession | Connection, names: tuple[str, ...] | None = None, bot: str | None = None,
    *, untried: bool = False,
) -> bool:
    """Whether a command (one of ``names``, if given) waits; works on a Core connection too.

    ``untried``: only commands not tried yet, so that a command waiting out a venue fault
    is retried at the bot's iterations rather than at every poll of its sleep.
    """
    if names is None and bot is not None:
        statement = _UNTRIED_OF_BOT if untried else _ANY_PENDING_OF_BOT
        return db.scalar(statement, {"bot": bot}) is not None
    query = select(Command.id).where(Command.status == "pending")
    if names is not None:
        query = query.where(Command.command.in_(names))
    if (mine := _for_bot(bot)) is not None:
        query = query.where(mine)
    return db.scalar(query.limit(1)) is not None


def retry_later(db: OrmSession, command: Command, fault: str) -> None:
    """Leave ``command`` pending after a fault of the venue or the database, saying which
    (``fault``): it is tried again."""
    command.result = f"retrying after {fault}"[:MAX_RESULT_CHARS]
    db.commit()


def finish_command(
    db: OrmSession, command: Command, status: str, result: str, now: datetime
) -> None:
    """``now`` is the bot's wall clock. A command is never done before it was queued: a bot
    whose clock lags the queueing host's (another machine) records the queueing time."""
    command.status = status
    command.result = result[:MAX_RESULT_CHARS]
    command.executed_at = max(now, command.created_at)
    db.commit()
