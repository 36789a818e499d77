"""What a round trip costs and how far a target must lie to pay it, for the risk layer and
the engines alike (an engine that sets its targets by the same sum has its entries pass).

A target that is hit exits at the market, as taker; the entry is counted as taker too (a
market buy is, and a limit that crosses the book is), so the fees are twice TAKER_FEE. The
rest is measured from the entry's price, which for a market buy is the ask and so has paid
the entry's half of the spread already: the exit's half of the spread, plus walking the
book in and out for the entry's amount (the book the paper venue fills market orders
against, or the exchange's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def round_trip_fees_pct(taker_fee: float) -> float:
    """Fees of an entry and its exit, % of the entry's value."""
    return 2 * taker_fee * 100


def min_target_distance_pct(multiple: float, taker_fee: float, slippage_pct: float) -> float:
    """How far above the entry (%) a target must lie to pay ``multiple`` round trips."""
    return multiple * (round_trip_fees_pct(taker_fee) + slippage_pct)


def spread_pct(bid: float | None, ask: float | None) -> float | None:
    """The spread, % of the mid; None without both sides."""
    return (ask - bid) / ((ask + bid) / 2) * 100 if bid and ask else None


def book_slippage_pct(book: Mapping[str, Any], side: str, amount: float) -> float | None:
    """Average fill price walking the book, as % worse than the best level."""
    levels = book.get("asks" if side == "BUY" else "bids") or []
    if not levels:
        return None
    best, remaining, cost = levels[0][0], amount, 0.0
    for price, size in levels:
        take = min(remaining, size)
        cost += take * price
        remaining -= take
        if remaining <= 0:
            break
    if remaining > 0:
        return float("inf")
    average = cost / amount
    return abs(average / best - 1) * 100


def round_trip_cost_pct(bid: float | None, ask: float | None, book: Mapping[str, Any],
                        amount: float) -> float:
    """What a round trip of ``amount`` costs beyond its fees, % of the entry's price: the
    exit's half of the spread and the walks through the book in and out."""
    walks = (book_slippage_pct(book, side, amount) for side in ("BUY", "SELL"))
    return (spread_pct(bid, ask) or 0.0) / 2 + sum(walk or 0.0 for walk in walks)
