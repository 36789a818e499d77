"""Positions by average cost, folded from our own fills.

A position is never read from the exchange balance (which holds other people's coins on a
shared account); it is the sum of our fills, so that "positions equal the sum of fills" is
true by construction and realized PnL follows one rule everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

EPSILON = 1e-12  # a holding this small is exactly flat (float noise of its own fills)
# Base quantity below which a plan, order or holding counts as holding nothing: left over by
# rounding and partial fills, too small to exit or to keep a plan open for.
DUST = 1e-9


@dataclass
class Holding:
    quantity: float = 0.0  # signed: > 0 long, < 0 short
    avg_price: float = 0.0

    def apply(self, side: str, quantity: float, price: float) -> float:
        """Apply one fill and return the realized PnL it closes (before fees)."""
        signed = quantity if side.upper() == "BUY" else -quantity
        realized = 0.0
        if self.quantity * signed >= 0:  # opening or adding
            total = self.quantity + signed
            if abs(total) > EPSILON:
                self.avg_price = (
                    self.avg_price * abs(self.quantity) + price * abs(signed)
                ) / abs(total)
            self.quantity = total
        else:  # reducing, possibly flipping
            closing = min(abs(signed), abs(self.quantity))
            direction = 1.0 if self.quantity > 0 else -1.0
            realized = (price - self.avg_price) * closing * direction
            self.quantity += signed
            if abs(self.quantity) <= EPSILON:
                self.quantity, self.avg_price = 0.0, 0.0
            elif self.quantity * direction < 0:  # flipped: the rest opens at this price
                self.avg_price = price
        return realized


class PositionBook:
    """All holdings of one run, keyed by symbol."""

    def __init__(self) -> None:
        self.holdings: dict[str, Holding] = {}

    def apply(self, symbol: str, side: str, quantity: float, price: float) -> float:
        return self.holdings.setdefault(symbol, Holding()).apply(side, quantity, price)

    def with_holding(self, symbol: str, holding: Holding) -> PositionBook:
        """A copy with ``symbol`` held as ``holding``: the book a fill leaves, written with
        the fill before the runtime's own book changes (only once both committed)."""
        book = PositionBook()
        book.holdings = {**self.holdings, symbol: holding}
        return book

    def quantity(self, symbol: str) -> float:
        holding = self.holdings.get(symbol)
        return holding.quantity if holding else 0.0

    def open_items(self) -> dict[str, Holding]:
        return {s: h for s, h in self.holdings.items() if abs(h.quantity) > EPSILON}

    @classmethod
    def from_fills(cls, fills: list[tuple[str, str, float, float]]) -> PositionBook:
        """Fold (symbol, side, quantity, price) tuples in booking order."""
        book = cls()
        for symbol, side, quantity, price in fills:
            book.apply(symbol, side, quantity, price)
        return book
