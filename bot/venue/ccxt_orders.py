"""Order checks done before anything is sent to an exchange.

An order below the market's minimum amount or cost is refused by every exchange; catching
it here costs no request, no rate-limit weight and no error toward the circuit breaker, and
the reason names the limit instead of an exchange-specific code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ccxt

from bot.venue.base import BelowMinimum

CLIENT_ORDER_ID = "clientOrderId"


@dataclass(frozen=True)
class PreparedOrder:
    """An order with amount and price rounded the way the market accepts them."""

    amount: float
    price: float | None
    params: dict[str, Any]
    client_order_id: str | None


def _precise(rounded: str | None) -> float:
    """A number ccxt rounded to the market's precision (it answers None only for None)."""
    assert rounded is not None
    return float(rounded)


def _without_noise(amount: float) -> float:
    """``amount`` to 15 significant digits. ccxt cuts an amount down to the market's step,
    and a holding summed from fills carries the sum's float noise (0.1 + 0.7 is
    0.7999999999999999): cut as it is, it sells a step less and leaves dust below the
    market's minimum that no later order can sell. No market's step is that fine."""
    return float(f"{amount:.15g}")


def _limit(market: dict[str, Any], kind: str) -> float | None:
    value = ((market.get("limits") or {}).get(kind) or {}).get("min")
    return float(value) if value else None


def prepare_order(
    exchange: ccxt.Exchange,
    symbol: str,
    amount: float,
    price: float | None,
    params: dict[str, Any] | None,
    reference_price: float | None,
) -> PreparedOrder:
    """Round amount and price and enforce the market minimums, or raise BelowMinimum.

    ``reference_price`` is the last price seen for the symbol; it lets the cost minimum be
    checked for market orders, which carry no price. ccxt itself maps the unified
    ``clientOrderId`` param to each exchange's wire name (binance ``newClientOrderId``,
    kraken ``cl_ord_id``, gemini ``client_order_id``), so it is passed on unchanged.
    """
    market = exchange.market(symbol)
    params = dict(params or {})
    client_order_id = params.get(CLIENT_ORDER_ID)
    try:
        rounded_amount = _precise(exchange.amount_to_precision(symbol, _without_noise(amount)))
    except ccxt.InvalidOrder:  # rounds to zero: smaller than one lot
        rounded_amount = 0.0
    rounded_price = (
        _precise(exchange.price_to_precision(symbol, price)) if price is not None else None
    )
    min_amount = _limit(market, "amount")
    if rounded_amount <= 0 or (min_amount is not None and rounded_amount < min_amount):
        raise BelowMinimum(
            f"{exchange.id} {symbol}: amount {amount} (rounded {rounded_amount}) is below "
            f"the market minimum amount {min_amount}"
        )
    min_cost = _limit(market, "cost")
    unit_price = rounded_price or reference_price
    if min_cost is not None and unit_price:
        cost = rounded_amount * unit_price
        if cost < min_cost:
            raise BelowMinimum(
                f"{exchange.id} {symbol}: order cost {cost:.8g} ({rounded_amount} x "
                f"{unit_price}) is below the market minimum cost {min_cost}"
            )
    return PreparedOrder(rounded_amount, rounded_price, params, client_order_id)


def with_client_order_id(order: dict[str, Any], client_order_id: str | None) -> dict[str, Any]:
    """The order with our client order id, filled in when the exchange's answer lacks it.

    The client order id is how a restarted loop recognises its own orders; an order that
    comes back without it looks foreign and gets placed a second time.
    """
    if client_order_id is not None and not order.get(CLIENT_ORDER_ID):
        order = {**order, CLIENT_ORDER_ID: client_order_id}
    return order
