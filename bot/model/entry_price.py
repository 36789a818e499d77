"""The one price an entry is valued at, shared by sizing, validation and the risk layer.

An engine sizes an entry from a value (a share of equity, an LLM's ``quote_value``) and the
risk layer values the same entry against ``MAX_ORDER_VALUE``; were they to use different
prices (the last trade for sizing, the ask for risk), an entry sized exactly at the cap would
be refused by it. A market buy pays the ask, a limit buy its price, or the ask when its price
is above the ask (it is marketable and fills there at once); the last trade stands in only
when the book has no ask.
"""

from __future__ import annotations

import math
from typing import TypeGuard

# Sizes are rounded to significant digits and values divided then multiplied back, so an
# entry sized at a cap may land a float's hair above it; that is not a breach.
CAP_TOLERANCE = 1e-9


def entry_price(order_type: str | None, limit_price: float | None, ask: float | None,
                last: float | None) -> float:
    """The price an entry of ``order_type`` is valued at (0.0 when there is none)."""
    market = float(ask) if _positive(ask) else float(last) if _positive(last) else 0.0
    if order_type == "limit" and _positive(limit_price):
        return min(float(limit_price), market) if market else float(limit_price)
    return market


# How far the price may have moved between the sizing (the market an engine was shown) and
# the risk check (the market as the order is sent) for an entry sized at the cap to be
# brought back to it rather than refused: an LLM answers seconds later.
PRICE_MOVE_ROOM = 0.01


def fit_to_cap(amount: float, price: float, cap: float) -> float:
    """``amount``, or the amount worth ``cap`` at ``price`` when ``amount`` is worth just
    over it (by at most PRICE_MOVE_ROOM): an entry sized at the cap is not refused by it."""
    at_cap = cap / price if price > 0 else amount
    return at_cap if at_cap < amount <= at_cap * (1 + PRICE_MOVE_ROOM) else amount


def within_cap(value: float, cap: float) -> bool:
    """Whether an order value is within a cap, allowing ``CAP_TOLERANCE`` of rounding."""
    return value <= cap * (1 + CAP_TOLERANCE)


def _positive(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value) and value > 0
