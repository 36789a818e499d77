"""The one price an entry is valued at, shared by sizing, validation and the risk layer.

An engine sizes an entry from a value (a share of equity, an LLM's ``quote_value``) and the
risk layer values the same entry against ``MAX_ORDER_VALUE``; were they to use different
prices (the last trade for sizing, the ask for risk), an entry sized exactly at the cap would
be refused by it. A market buy pays the ask, a limit buy its price; the last trade stands in
only when the book has no ask.
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
    if order_type == "limit" and _positive(limit_price):
        return float(limit_price)
    if _positive(ask):
        return float(ask)
    return float(last) if _positive(last) else 0.0


def within_cap(value: float, cap: float) -> bool:
    """Whether an order value is within a cap, allowing ``CAP_TOLERANCE`` of rounding."""
    return value <= cap * (1 + CAP_TOLERANCE)


def _positive(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value) and value > 0
