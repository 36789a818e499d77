"""The live feed: public prices of a real exchange through ccxt, without keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.clock import SteadyClock
from bot.venue.base import TransientVenueError, VenueError
from bot.venue.feeds.base import Book, Candle, FeedError, merge_candles, timeframe_ms


class LiveFeed:
    """Public prices of a real exchange through ccxt, without keys.

    The clock is the wall clock. ``current_candle()`` is the base candle that closed since
    the previous step (None between closes), so resting paper orders fill about one base
    candle late but never on prices from before they were placed.
    """

    kind = "live"

    def __init__(
        self, exchange_id: str, symbols: Sequence[str], base_timeframe: str = "1m",
        exchange: Any | None = None, clock: Callable[[], int] | None = None,
    ) -> None:
        import ccxt

        self.exchange_id = exchange_id
        self.symbols = list(symbols)
        self.base_timeframe = base_timeframe
        self._base_ms = timeframe_ms(base_timeframe)
        if exchange is None:
            if exchange_id not in ccxt.exchanges:
                raise FeedError(f"{exchange_id!r} is not a ccxt exchange id")
            exchange = getattr(ccxt, exchange_id)({"enableRateLimit": True})
        self.exchange = exchange
        self._steady: SteadyClock | None = None
        if clock is None:
            clock = self._steady = SteadyClock()
        self._clock = clock
        self._now = self._clock()
        self._last_seen: dict[str, int] = {}
        self._current: dict[str, Candle | None] = {}

    def _call(self, method: str, *args: Any) -> Any:
        import ccxt

        try:
            return getattr(self.exchange, method)(*args)
        except ccxt.NetworkError as exc:
            raise TransientVenueError(f"{self.exchange_id} {method}: {exc}") from exc
        except ccxt.BaseError as exc:
            raise VenueError(f"{self.exchange_id} {method}: {exc}") from exc

    def now_ms(self) -> int:
        return self._now

    def clock_note(self) -> str | None:
        return self._steady.jump_note() if self._steady is not None else None

    def advance(self) -> bool:
        self._now = max(self._now, self._clock())
        for symbol in self.symbols:
            closed = self.candles(symbol, self.base_timeframe, limit=3)
            if not closed:
                self._current[symbol] = None
                continue
            fresh = [c for c in closed if c[0] > self._last_seen.get(symbol, closed[-1][0])]
            self._current[symbol] = merge_candles(fresh) if fresh else None
            if closed:
                self._last_seen[symbol] = int(closed[-1][0])
        return True

    def seek(self, now_ms: int) -> None:
        """A live market cannot rewind; the clock only never goes backwards."""
        self._now = max(self._now, now_ms)

    def candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        tf = timeframe_ms(timeframe)
        fetch_limit = None if limit is None else limit + 1  # the forming candle is dropped
        raw = self._call("fetch_ohlcv", symbol, timeframe, since_ms, fetch_limit)
        closed = [[int(c[0]), *map(float, c[1:6])] for c in raw if c[0] + tf <= self._now]
        return closed[-limit:] if limit else closed

    def current_candle(self, symbol: str) -> Candle | None:
        return self._current.get(symbol)

    def book(self, symbol: str, depth: int) -> Book:
        book = self._call("fetch_order_book", symbol, depth)
        return {
            "bids": [[float(p), float(a)] for p, a, *_ in book["bids"][:depth]],
            "asks": [[float(p), float(a)] for p, a, *_ in book["asks"][:depth]],
        }

    def ticker(self, symbol: str) -> dict[str, Any]:
        return self._call("fetch_ticker", symbol)

    def descriptor(self) -> dict[str, Any]:
        return {"kind": self.kind, "exchange": self.exchange_id}
