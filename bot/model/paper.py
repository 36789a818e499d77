"""A paper account's records: its orders and fills, and the account as a store gives it
back to the venue to continue.

Field names are the ``paper_*`` columns, so the store reads and writes them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class OrderState:
    """One paper order; field names are the ``paper_orders`` columns."""

    id: str
    client_order_id: str | None
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit | stop
    price: float | None
    stop_price: float | None
    amount: float
    filled: float
    cost: float
    fee: float
    status: str  # open | closed | canceled
    timestamp_ms: int
    updated_ms: int

    @property
    def remaining(self) -> float:
        return max(self.amount - self.filled, 0.0)

    def row(self) -> dict[str, Any]:
        return _row(self)


@dataclass
class FillState:
    """One paper fill; field names are the ``paper_fills`` columns."""

    id: str
    order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    price: float
    amount: float
    fee: float
    fee_currency: str
    taker_or_maker: str
    timestamp_ms: int

    @property
    def cost(self) -> float:
        """Quote value of the fill; balances use exactly this product, so they reconcile."""
        return self.price * self.amount

    def row(self) -> dict[str, Any]:
        return _row(self)


def _row(record: OrderState | FillState) -> dict[str, Any]:
    """The record's fields by name; ``asdict`` deep-copied every scalar on each of the
    twenty fills a step fetches, and these fields are all flat."""
    return {name: getattr(record, name) for name in _FIELDS[type(record)]}


ORDER_FIELDS = tuple(f.name for f in fields(OrderState))
FILL_FIELDS = tuple(f.name for f in fields(FillState))
_FIELDS = {OrderState: ORDER_FIELDS, FillState: FILL_FIELDS}


@dataclass
class Snapshot:
    """A stored account as the venue needs it to continue."""

    now_ms: int
    seq: int
    feed: dict[str, Any]
    balances: dict[str, list[float]]  # currency -> [total, used]
    orders: list[OrderState] = field(default_factory=list)
    fills: list[FillState] = field(default_factory=list)
