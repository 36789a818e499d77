"""One fill of ours, in the one shape the bot books it (``bot.booking``).

A venue reports a fill in ccxt's shape (a dict, its fields in different places on different
venues); the fill sync reads it into a ``Fill`` once, and everything after (finding its
order, its fee, its day, its trade row, the start-of-day account) reads the ``Fill``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.model.vocabulary import Side


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str  # the venue's trade id: a fill is booked once per (venue, trade_id)
    symbol: str
    side: Side
    amount: float
    price: float
    # the quote value the venue says it traded (None: it does not say)
    cost: float | None
    fee_cost: float
    fee_currency: str | None
    # when the venue says it happened, epoch ms (None: it does not say)
    timestamp_ms: float | None
    order_id: str | None  # the venue's id of its order
    client_order_id: str | None
    liquidity: str | None  # ccxt's takerOrMaker

    @classmethod
    def from_venue(cls, trade: dict[str, Any], client_order_id: str | None) -> Fill:
        """``trade`` as ccxt (and the paper venue) shape it; ``client_order_id`` as found in
        it (``bot.fleet.client_id_of``)."""
        fee = trade.get("fee") or {}
        cost = trade.get("cost")
        return cls(
            trade_id=str(trade["id"]), symbol=trade["symbol"], side=Side(trade["side"].upper()),
            amount=float(trade["amount"]), price=float(trade["price"]),
            cost=None if cost is None else float(cost),
            fee_cost=float(fee.get("cost") or 0.0), fee_currency=fee.get("currency"),
            timestamp_ms=trade.get("timestamp"),
            order_id=str(trade["order"]) if trade.get("order") else None,
            client_order_id=client_order_id, liquidity=trade.get("takerOrMaker"),
        )

    def time(self, default: datetime) -> datetime:
        """When the venue says the fill happened (``default`` for a venue that does not)."""
        if self.timestamp_ms:
            return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return default

    def held_change(self) -> float:
        """The base quantity the fill moved into our hands (a buy) or out of them (a sell):
        its amount, less a fee paid in the base currency on a buy (Bybit's spot charges a
        buy's fee in the coin bought) or more on a sell. The books hold what the account
        holds, so an exit sized from them sells no coin that is not there."""
        base = self.symbol.split("/")[0]
        if not self.fee_currency or self.fee_currency != base:
            return self.amount
        return self.amount - self.fee_cost if self.side is Side.BUY else self.amount + self.fee_cost

    def third_fee_currency(self) -> str | None:
        """The fee's currency when it is neither the symbol's base nor its quote (binance's
        BNB, with its fee discount on), else None."""
        if self.fee_currency is None or not self.fee_cost:
            return None
        return None if self.fee_currency in self.symbol.split("/") else self.fee_currency

    def fee_in_quote(self, fee_price: float = 0.0) -> float:
        """The fee in the quote currency: a fee paid in the base currency is valued at the
        fill's price, one paid in a third currency at ``fee_price`` (that currency's price in
        quote; ``bot.fees`` finds it, or says why it books nothing)."""
        base = self.symbol.split("/")[0]
        if self.fee_currency and self.fee_currency == base:
            return self.fee_cost * self.price
        if self.third_fee_currency() is not None:
            return self.fee_cost * fee_price
        return self.fee_cost

    def cash_moved(self, quote: str) -> float:
        """What the fill did to the ``quote`` balance: its cost either way, and a fee paid in
        quote."""
        cost = self.cost or self.price * self.amount
        paid = self.fee_cost if self.fee_currency in (None, quote) else 0.0
        return (cost if self.side is Side.SELL else -cost) - paid
