"""The contract every feed keeps (the ``Feed`` protocol), its error, its candle and book
shapes, and timeframe and timestamp conversions."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from bot.venue.base import VenueError

Candle = list[float]
Book = dict[str, list[list[float]]]
UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
DAY_MS = 86_400_000


class FeedError(VenueError):
    """The feed's input is unusable; the message names the file and row when there is one."""


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds of a ccxt timeframe such as ``5m``, ``1h`` or ``1d``."""
    unit = timeframe[-1:]
    if unit not in UNIT_MS or not timeframe[:-1].isdigit() or int(timeframe[:-1]) <= 0:
        raise FeedError(f"unsupported timeframe {timeframe!r} (use e.g. 1m, 5m, 1h, 1d)")
    return int(timeframe[:-1]) * UNIT_MS[unit]


def merge_candles(candles: list[Candle]) -> Candle:
    """Consecutive candles as one: the first open, the extremes, the last close, the volume."""
    return [candles[0][0], candles[0][1], max(c[2] for c in candles),
            min(c[3] for c in candles), candles[-1][4], sum(c[5] for c in candles)]


@runtime_checkable
class Feed(Protocol):
    """What the paper venue needs from a market: a clock, closed candles, a book, a ticker."""

    kind: str  # 'replay' | 'synthetic' | 'live'
    base_timeframe: str
    symbols: list[str]

    def now_ms(self) -> int: ...

    def advance(self) -> bool:
        """Step the clock one base candle (or to the wall clock); False when a replay ends."""
        ...

    def seek(self, now_ms: int) -> None:
        """Put the clock back where a stored run left it."""

    def candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]: ...

    def current_candle(self, symbol: str) -> Candle | None:
        """What traded since the previous step as [ts,o,h,l,c,v], or None if nothing did."""

    def book(self, symbol: str, depth: int) -> Book: ...

    def ticker(self, symbol: str) -> dict[str, Any]: ...

    def descriptor(self) -> dict[str, Any]:
        """What is needed to rebuild the same market after a restart (stored with the clock)."""
        ...

    def clock_note(self) -> str | None:
        """Why the market's time is not the system clock's (a clock jump), or None."""


@lru_cache(maxsize=256)  # a step asks for its clock's form several times (ticker, book, balance)
def iso_ms(ms: int) -> str:
    """ccxt's ISO 8601 form of a millisecond timestamp."""
    secs, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"
