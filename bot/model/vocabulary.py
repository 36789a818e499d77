"""The names the bot and the store share: statuses, purposes, sides and command kinds.

Each is a ``StrEnum`` whose values are the strings stored in the database, so a member
compares equal to, and is written as, the column's value.
"""

from __future__ import annotations

from enum import StrEnum


class RunKind(StrEnum):
    """What runs under a name in ``bots``: a live bot (paper or LIVE), or a replay, which
    answers the commands addressed to its run name and is no bot of the fleet."""

    LIVE = "live"
    REPLAY = "replay"


class OrderStatus(StrEnum):
    """An order in the journal (``orders``): journaled ``new``, then sent and ``open``, and
    in the end ``closed`` (filled, whole or in part: a venue may show those fills late),
    ``canceled`` (nothing filled, as far as the venue said), ``rejected`` by the venue,
    ``expired`` on the venue, or ``failed`` (never sent)."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


# an order the venue may still fill: journaled and not yet sent, or sent and open
LIVE_ORDER = (OrderStatus.NEW, OrderStatus.OPEN)


class OrderPurpose(StrEnum):
    """Why an order was sent: a plan's entry or exit, a close by command, a plan's stop
    resting on the venue (STOPLOSS_ON_EXCHANGE), or an order of ours found on the venue
    that the journal did not know."""

    ENTRY = "entry"
    EXIT = "exit"
    CLOSE = "close"
    STOP = "stop"
    ADOPTED = "adopted"


class OrderType(StrEnum):
    """How an order trades: at the market, resting at its limit, or a stop that becomes a
    market order once the price reaches it."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class Side(StrEnum):
    """The side of a plan or of a journaled order, as the decision names it (a venue's own
    orders are in ccxt's lower case)."""

    BUY = "BUY"
    SELL = "SELL"


def closing_side(side: str) -> Side:
    """The side of the order that closes a plan or position opened on ``side``."""
    return Side.SELL if side == Side.BUY else Side.BUY


class PlanStatus(StrEnum):
    """A trade plan: ``pending`` until its entry fills, ``open`` while held, ``closing``
    while its exit is under way, ``closed`` at the end."""

    PENDING = "pending"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Outcome(StrEnum):
    """What became of one action of a decision, as its trace records it."""

    HOLD = "hold"
    PLACED = "placed"
    FAILED = "failed"
    REFUSED = "refused"
    EXITING = "exiting"
    UPDATED = "updated"
    INVALID = "invalid"
    ERROR = "error"


class CommandKind(StrEnum):
    """What an operator can ask of a bot."""

    STOP = "stop"
    CLOSE_ALL = "close-all"
    PAUSE = "pause"
    RESUME = "resume"
    CLOSE = "close"
    CANCEL = "cancel"


class CommandStatus(StrEnum):
    """A command: ``pending`` → ``running`` → ``done`` | ``failed``."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TraceStatus(StrEnum):
    """A decision trace: ``ok`` (its actions went, though a field one of them did without
    may be named on its errors), ``rejected`` (risk or validation dropped an action),
    ``error``, or ``abandoned``."""

    OK = "ok"
    REJECTED = "rejected"
    ERROR = "error"
    ABANDONED = "abandoned"


class ExitReason(StrEnum):
    """Why a round trip ended, as a trader names it: a plan's ``stop``, ``target``,
    ``trailing`` stop (one moved to or past the entry) or ``max age``; the ``engine``'s
    own sell; the operator's ``close-all``; or a ``manual`` close (one symbol by command, or
    an order of ours placed outside the bot)."""

    STOP = "stop"
    TARGET = "target"
    TRAILING = "trailing"
    MAX_AGE = "max age"
    ENGINE = "engine"
    CLOSE_ALL = "close-all"
    MANUAL = "manual"
