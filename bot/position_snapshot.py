"""The position snapshot: the session's ``positions`` rows, kept as the runtime's book says.

Written by whichever step's transaction changes or re-times the book (market data, resync,
a booked fill), and kept by the store once that transaction commits, so an unchanged snapshot costs
no statement.
"""

from __future__ import annotations

from datetime import datetime

from bot.positions import PositionBook
from bot.runtime import Runtime
from db.snapshots import replace_positions, stamp_positions


def write_positions(
    rt: Runtime, db, now: datetime, book: PositionBook | None = None
) -> tuple[int, list[tuple[str, float, float]]]:
    """Make the session's position snapshot ``book`` (default: the runtime's, folded from our
    fills), as of ``now``.

    Unchanged holdings only have their time refreshed (nothing at all when flat or already
    written as of ``now``). Returns what to hand ``positions_written`` once the caller's
    transaction commits.
    """
    held = held_positions(book or rt.book)
    snapshot = (rt.session_id, held)
    if snapshot != rt.store.positions:
        replace_positions(db, rt.session_id, [
            {"symbol": symbol, "quantity": quantity, "avg_price": avg_price,
             "exchange_timestamp": now} for symbol, quantity, avg_price in held])
    elif held and rt.store.positions_at != now:
        stamp_positions(db, rt.session_id, now)
    return snapshot


def positions_due(rt: Runtime, now: datetime) -> bool:
    """Whether ``write_positions`` (of the runtime's book) would write anything now."""
    held = held_positions(rt.book)
    return (rt.session_id, held) != rt.store.positions or bool(
        held and rt.store.positions_at != now)


def positions_written(
    rt: Runtime, snapshot: tuple[int, list[tuple[str, float, float]]], now: datetime
) -> None:
    """Keep a position snapshot ``write_positions`` wrote as of ``now``, once committed."""
    rt.store.positions_written(snapshot, now)


def held_positions(book: PositionBook) -> list[tuple[str, float, float]]:
    """The position snapshot's rows (symbol, quantity, average price) for ``book``."""
    return [(symbol, holding.quantity, holding.avg_price)
            for symbol, holding in book.open_items().items()]
