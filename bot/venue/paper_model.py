"""The paper venue's pure fill rules, kept apart from storage and the clock (its records,
orders and fills, are ``bot.model.paper``).

Everything here is a function of its arguments, so the fill model can be read and tested
on its own and two runs with the same inputs produce the same fills bit for bit.
"""

from __future__ import annotations

from typing import Any

from bot.model.paper import FillState, OrderState
from bot.venue.feeds import Book, Candle, iso_ms


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote


def walk_book(book: Book, side: str, amount: float, bound: float) -> tuple[float, float]:
    """Take liquidity for a taker order up to a price bound: (filled amount, cost).

    A buy lifts asks priced at or below ``bound``, a sell hits bids at or above it; what the
    book cannot give within the bound is left unfilled rather than filled at a made-up price.
    """
    levels = book["asks"] if side == "buy" else book["bids"]
    filled = cost = 0.0
    for price, size in levels:
        if (side == "buy" and price > bound) or (side == "sell" and price < bound):
            break
        take = min(size, amount - filled)
        filled += take
        cost += take * price
        if filled >= amount:
            return amount, cost
    return filled, cost


def limit_trades_through(order: OrderState, candle: Candle) -> bool:
    """A resting limit fills only if the market traded beyond it: touching is not enough."""
    assert order.price is not None
    return candle[3] < order.price if order.side == "buy" else candle[2] > order.price


def stop_fill_price(order: OrderState, candle: Candle) -> float | None:
    """The price a triggered stop fills at, or None if the candle did not reach the stop.

    When the candle opens beyond the stop (a gap), the fill is at the open: the worse price
    for the trader, because nobody was there to trade at the stop.
    """
    assert order.stop_price is not None
    stop, open_ = order.stop_price, candle[1]
    if order.side == "sell":
        return min(stop, open_) if candle[3] <= stop else None
    return max(stop, open_) if candle[2] >= stop else None


def order_dict(order: OrderState, fee_currency: str) -> dict[str, Any]:
    """The order in ccxt's unified shape."""
    average = order.cost / order.filled if order.filled else None
    return {
        "id": order.id, "clientOrderId": order.client_order_id,
        "timestamp": order.timestamp_ms, "datetime": iso_ms(order.timestamp_ms),
        "lastTradeTimestamp": order.updated_ms if order.filled else None,
        "lastUpdateTimestamp": order.updated_ms,
        "symbol": order.symbol, "type": order.type, "timeInForce": "GTC",
        "side": order.side, "price": order.price if order.price is not None else average,
        "stopPrice": order.stop_price, "triggerPrice": order.stop_price,
        "amount": order.amount, "filled": order.filled, "remaining": order.remaining,
        "cost": order.cost, "average": average, "status": order.status,
        "fee": {"cost": order.fee, "currency": fee_currency}, "trades": [],
        "info": order.row(),
    }


def trade_dict(fill: FillState) -> dict[str, Any]:
    """The fill in ccxt's unified trade shape."""
    return {
        "id": fill.id, "order": fill.order_id, "clientOrderId": fill.client_order_id,
        "timestamp": fill.timestamp_ms, "datetime": iso_ms(fill.timestamp_ms),
        "symbol": fill.symbol, "type": None, "side": fill.side,
        "takerOrMaker": fill.taker_or_maker, "price": fill.price, "amount": fill.amount,
        "cost": fill.cost,
        "fee": {"cost": fill.fee, "currency": fill.fee_currency},
        "fees": [{"cost": fill.fee, "currency": fill.fee_currency}],
        "info": fill.row() | {"clientOrderId": fill.client_order_id},
    }
