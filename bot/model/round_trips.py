"""Round trips: a run's fills grouped per symbol from flat to flat, storage-free.

A round trip opens with the fill that takes a symbol's position off flat and ends with the
fill that brings it back: scale-ins and partial exits in between belong to it. Its gross
PnL is folded with ``bot.positions.Holding``, the average-cost rule realized PnL is booked
by, so the trips of a run add up to its booked realized PnL. A fill that flips the position
(sells more than is held) is split: the part that closes ends the trip, the rest opens the
next, its fee shared in proportion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.model.vocabulary import ExitReason, OrderPurpose, Side
from bot.positions import Holding

# How the bot words its exits (bot/steps/plans.py, bot/guard.py, bot/steps/commands.py).
STOP_WORDS = "stop hit"
TARGET_WORDS = "target hit"
MAX_AGE_WORDS = "plan older than"
CLOSE_ALL_WORDS = "close-all"
OPERATOR_WORDS = "by operator"  # a close of one symbol by command
RESTING_STOP = "stop"  # the purpose of a stop resting on the venue (bot/resting_stop.py)


class TripFill(NamedTuple):
    """One booked fill, with what its order and plan say about why it was sent (a tuple: a
    run's year holds tens of thousands, built on every read)."""

    id: int
    symbol: str
    side: str  # BUY | SELL
    quantity: float
    price: float
    fee: float  # in quote currency
    timestamp: datetime
    purpose: str | None = None  # its order's: entry | exit | close | adopted | stop
    reason: str | None = None
    trace_id: int | None = None
    engine: str | None = None  # the engine of the decision (trace) it came from
    trailed: bool = False  # its plan's stop had been moved to or past the entry


@dataclass
class RoundTrip:
    """One position from flat to flat (``closed_at`` None: still held)."""

    symbol: str
    direction: str  # long | short
    opened_at: datetime
    closed_at: datetime | None = None
    size: float = 0.0  # everything bought into it (sold, for a short)
    entry_value: float = 0.0
    exit_size: float = 0.0
    exit_value: float = 0.0
    gross_pnl: float = 0.0
    fees: float = 0.0
    exit_reason: ExitReason | None = None
    engine: str | None = None
    open_trace_id: int | None = None
    close_trace_id: int | None = None
    fill_ids: list[int] = field(default_factory=list)
    # the symbol's holding while the trip is open: what a later fill folds against
    holding: Holding = field(default_factory=Holding, repr=False, compare=False)

    @property
    def net_pnl(self) -> float:
        return self.gross_pnl - self.fees

    @property
    def avg_entry(self) -> float:
        return self.entry_value / self.size if self.size else 0.0

    @property
    def avg_exit(self) -> float | None:
        return self.exit_value / self.exit_size if self.exit_size else None

    @property
    def return_pct(self) -> float:
        """Net PnL as a percentage of what its entries cost."""
        return self.net_pnl / self.entry_value * 100 if self.entry_value else 0.0

    @property
    def duration(self) -> timedelta | None:
        return self.closed_at - self.opened_at if self.closed_at else None

    @property
    def won(self) -> bool:
        return self.net_pnl > 0


def exit_reason(purpose: str | None, reason: str | None, trailed: bool) -> ExitReason:
    """What closed a trip, from its last fill's order purpose and reason."""
    words = (reason or "").strip().lower()
    if words.startswith(CLOSE_ALL_WORDS):
        return ExitReason.CLOSE_ALL
    if purpose in (OrderPurpose.CLOSE, OrderPurpose.ADOPTED) or words.endswith(OPERATOR_WORDS):
        return ExitReason.MANUAL
    if words.startswith(STOP_WORDS) or purpose == RESTING_STOP:
        return ExitReason.TRAILING if trailed else ExitReason.STOP
    if words.startswith(TARGET_WORDS):
        return ExitReason.TARGET
    if words.startswith(MAX_AGE_WORDS):
        return ExitReason.MAX_AGE
    return ExitReason.ENGINE


def stop_was_trailed(side: str, entry_price: float, stop_price: float,
                     trail_armed: bool) -> bool:
    """Whether a plan's stop was moved to breakeven or beyond (by the plan step's trail or
    by the engine), so a hit is a trailing stop rather than a loss cut."""
    if trail_armed:
        return True
    return stop_price >= entry_price if side == Side.BUY else stop_price <= entry_price


def group_round_trips(fills: Iterable[TripFill], still_open: Iterable[RoundTrip] = ()
                      ) -> list[RoundTrip]:
    """Fold fills (in booking order) into round trips, ordered by when they opened.
    ``still_open``: the trips the fills before these left open (with their holdings),
    which these fills go on from; they come first in the result."""
    trips = [trip for trip in still_open if trip.closed_at is None]
    current = {trip.symbol: trip for trip in trips}
    held = {trip.symbol: trip.holding for trip in trips}
    for fill in fills:
        left, fee_left = fill.quantity, fill.fee
        while left > 0:
            holding = held.setdefault(fill.symbol, Holding())
            trip = current.get(fill.symbol)
            if trip is None:
                trip = current[fill.symbol] = _opened(fill, holding)
                trips.append(trip)
            adds = holding.quantity == 0 or (holding.quantity > 0) == (fill.side == Side.BUY)
            part = left if adds else min(left, abs(holding.quantity))
            fee = fee_left if part >= left else fill.fee * part / fill.quantity
            trip.gross_pnl += holding.apply(fill.side, part, fill.price)
            trip.fees += fee
            if not trip.fill_ids or trip.fill_ids[-1] != fill.id:  # not `in`: trips run long
                trip.fill_ids.append(fill.id)
            if adds:
                trip.size += part
                trip.entry_value += part * fill.price
            else:
                trip.exit_size += part
                trip.exit_value += part * fill.price
                trip.close_trace_id = fill.trace_id
            if holding.quantity == 0:
                trip.closed_at = fill.timestamp
                trip.exit_reason = exit_reason(fill.purpose, fill.reason, fill.trailed)
                del current[fill.symbol]
            left, fee_left = left - part, fee_left - fee
            if left <= fill.quantity * 1e-12:
                break
    return trips


def _opened(fill: TripFill, holding: Holding) -> RoundTrip:
    return RoundTrip(symbol=fill.symbol, direction="long" if fill.side == Side.BUY else "short",
                     opened_at=fill.timestamp, engine=fill.engine, open_trace_id=fill.trace_id,
                     holding=holding)
