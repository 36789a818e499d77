"""The latest view of one symbol, as the market-data step leaves it for the others."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class Quote:
    """The latest view of one symbol, from this iteration's market-data step."""

    last: float
    bid: float | None
    ask: float | None
    timestamp: datetime
    book: dict[str, Any]
    low_since_check: float
    high_since_check: float
    # Open time of the earliest candle in the extremes (None: the extremes are just
    # ``last``) and of the newest candle seen; plans opened later ignore older extremes.
    extremes_from_ms: int | None = None
    last_candle_ms: int | None = None
