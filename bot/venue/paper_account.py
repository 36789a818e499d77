"""What the paper venue needs of the store that keeps its account, and of the retry that
waits out that store's outages; both are given to it where it is built.

``db.paper_store.PaperStore`` is the store and ``db.retry.Outage`` the retry; the venue
itself knows neither, so it runs on values alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.model.paper import FillState, OrderState, Snapshot

if TYPE_CHECKING:
    from sqlalchemy import Connection

T = TypeVar("T")


class AccountStore(Protocol):
    """One paper account's persistence: written through, one operation at a time."""

    account: str

    def load(self) -> Snapshot | None:
        """The stored account, or None when there is none yet."""
        ...

    def stored_feed(self) -> dict[str, Any] | None:
        """The feed descriptor stored with the account, to rebuild the same market."""
        ...

    def create(self, now_ms: int, feed: dict[str, Any], balances: dict[str, list[float]]) -> None:
        ...

    def move_clock(self, now_ms: int, seq: int, conn: Connection | None = None) -> None:
        """Store the clock alone; in ``conn``'s transaction (uncommitted) when given."""
        ...

    def commit(
        self, now_ms: int, seq: int, orders: Iterable[OrderState] = (),
        fills: Iterable[FillState] = (), balances: dict[str, list[float]] | None = None,
    ) -> None:
        """Store one operation's changes and the clock atomically."""
        ...


# Opens the store of the account named (``functools.partial(PaperStore, sessions)``)
OpenStore = Callable[[str], AccountStore]


class Unretried:
    """Runs each touch once: for a venue whose store's outages its caller handles."""

    def run(self, what: str, touch: Callable[[], T]) -> T:
        return touch()
