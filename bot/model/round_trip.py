"""What a round trip costs and how far a target must lie to pay it, for the risk layer and
the engines alike (an engine that sets its targets by the same sum has its entries pass).

A target that is hit exits at the market, as taker; the entry is counted as taker too (a
market buy is, and a limit that crosses the book is), so the fees are twice TAKER_FEE. The
slippage is the spread plus walking the book in and out for the entry's amount: the book
the paper venue fills market orders against, or the exchange's own.
"""

from __future__ import annotations


def round_trip_fees_pct(taker_fee: float) -> float:
    """Fees of an entry and its exit, % of the entry's value."""
    return 2 * taker_fee * 100


def min_target_distance_pct(multiple: float, taker_fee: float, slippage_pct: float) -> float:
    """How far above the entry (%) a target must lie to pay ``multiple`` round trips."""
    return multiple * (round_trip_fees_pct(taker_fee) + slippage_pct)
