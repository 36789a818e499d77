"""The venue contract: a ccxt-shaped interface that every venue implements.

Values are ccxt's unified structures (dicts with ccxt's keys), so the paper venue and any
real exchange look the same to the loop. Every call either returns a value or raises one of
the errors below: a venue never answers ``None`` for a failure, because the loop would read
that as "nothing happened" and send the order again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from sqlalchemy import Connection


class VenueError(Exception):
    """Base class of everything a venue raises."""


class TransientVenueError(VenueError):
    """Network trouble, timeouts, rate limits, 5xx: retry later; counts toward the breaker."""


class OrderRejected(VenueError):
    """The venue refused the order (funds, size, price): record it, never retry blindly."""


class AccessRefused(OrderRejected):
    """The venue refuses our API key (revoked, not allowed from this IP, without the
    permission, the account suspended): asking again at once gets the same answer, so
    nothing is retried at once and entries pause until it is taken again
    (``bot.breaker.CircuitBreaker.record_refusal``)."""


class BelowMinimum(OrderRejected):
    """The order is smaller than the market's minimum amount or cost: an order of that
    size never goes, now or at a retry (what is left of a holding after the venue cut its
    exit to the market's step is such dust)."""


class DuplicateOrder(VenueError):
    """The client order id was already used: the order is already placed."""


class OrderNotFound(VenueError):
    """The order id is unknown to the venue (already gone or never existed)."""


# ``create_order`` params key of a stop order the bot sends on seeing its plan's stop hit:
# the open (ms) of the earliest candle whose range showed it the hit. The paper venue judges
# the stop against what traded from then on (an exchange is never sent it: there the bot
# sells at the market).
HIT_SEEN_SINCE = "hitSeenSince"


def journal_status(placed: dict[str, Any]) -> str:
    """The journal's status of an order the venue accepted, from its ccxt answer: closed,
    canceled (for ccxt's canceled, rejected or expired) or open (anything else, or an
    answer without a status).

    An order ended with part of it filled (binance expires a market order the book did not
    fill whole) is closed: done with fills, which the venue may show only later, and a plan
    waits for those (``bot.steps.plans.LATE_FILL_GRACE``) where a canceled entry's plan is
    closed at once and the coins it bought would arrive with no stop."""
    status = placed.get("status")
    if status == "closed":
        return "closed"
    if status in ("canceled", "rejected", "expired"):
        return "closed" if float(placed.get("filled") or 0.0) > 0 else "canceled"
    return "open"


def nothing_to_save() -> None:
    """What ``carry_clock`` returns when it wrote no clock: nothing to note after the commit."""


T = TypeVar("T")


class StoreRetry(Protocol):
    """Runs a touch of a store, waiting out the store's outages (``db.retry.Outage``)."""

    def run(self, what: str, touch: Callable[[], T]) -> T: ...


@runtime_checkable
class Venue(Protocol):
    """What the loop needs from a venue. Symbols are ccxt symbols (``BTC/USDT``)."""

    name: str  # 'paper' or the ccxt exchange id
    is_paper: bool

    @property
    def market(self) -> str:
        """Where the prices come from, as written on the heartbeat and on sessions: the paper
        venue's feed as FEED names it (synthetic | live | replay:PATHS), ``venue`` on an
        exchange."""
        ...

    # whether it takes resting stop orders (``create_order`` type ``stop``, the stop as its
    # price), which STOPLOSS_ON_EXCHANGE needs
    supports_stop_orders: bool

    def now(self) -> datetime:
        """The venue's clock, aware UTC (simulated in replay, wall clock otherwise)."""
        ...

    def advance(self) -> bool:
        """Step a simulated clock to its next tick; False when a replay has ended.

        Real venues return True without doing anything.
        """
        ...

    def clock_note(self) -> str | None:
        """Why the venue's clock is not the system clock's (a jump it did not follow), in
        words for the heartbeat, or None."""

    def catch_up(self) -> None:
        """Bring a market that follows the wall clock up to now (clock, candles, book,
        ticker), so an operator's command between iterations trades at the market of its
        own time. A replay's clock is its market's and stays; real venues are always now.
        """

    def carry_clock(self, conn: Connection) -> Callable[[], None]:
        """Write a simulated clock ``advance`` left unsaved in the caller's transaction;
        returns what to call once it committed. Real venues have no clock to write.
        """
        ...

    def use_outage(self, outage: StoreRetry) -> None:
        """Wait out the database's outages with the runtime's ``outage`` when the venue keeps
        its account there (the paper venue), so one count and one backoff cover both; a
        venue with no store of its own ignores it."""

    def fetch_ticker(self, symbol: str) -> dict[str, Any]: ...

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]: ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "5m", since: int | None = None,
        limit: int | None = None,
    ) -> list[list[float]]: ...

    def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``params['clientOrderId']`` carries our client order id on every venue."""
        ...

    def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]: ...

    def fetch_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        """One order as the venue has it now (its ``filled``, ``status``); OrderNotFound
        when the venue no longer knows it."""
        ...

    def fetch_order_by_client_id(self, client_id: str, symbol: str) -> dict[str, Any]:
        """One of our orders found by its client id, open or done: a send whose answer
        never came (its venue id unknown) may have been taken, and filled. OrderNotFound
        when the venue has no such order."""
        ...

    def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]: ...

    def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...

    def fetch_balance(self) -> dict[str, Any]: ...

    def describe_fill_model(self) -> dict[str, Any]:
        """Parameters of the fill model, shown on the console's Settings page."""
        ...
