"""The synthetic feed: a seeded, plausible market for running without data or network."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bot.clock import JUMP_TOLERANCE_SECONDS, SteadyClock, describe_seconds
from bot.venue.feeds.base import DAY_MS, Book, Candle, FeedError, timeframe_ms
from bot.venue.feeds.from_candles import book_from_rows, select_candles, ticker_from_rows

USD_LEVELS = {
    "BTC": 30_000.0, "ETH": 2_000.0, "BNB": 300.0, "SOL": 100.0, "XRP": 0.5, "ADA": 0.35,
    "DOGE": 0.08, "LTC": 80.0, "DOT": 6.0, "AVAX": 20.0, "LINK": 12.0, "MATIC": 0.8,
    "USDT": 1.0, "USDC": 1.0, "USD": 1.0, "BUSD": 1.0, "DAI": 1.0, "EUR": 1.1,
}
USD_DAILY_VOLUME = 5e8  # per symbol, spread evenly over the day before regime modulation
REGIME_CANDLES = 240
TICKS = 60  # sub-steps of a base candle, so a forming candle moves in real time


def price_level(symbol: str) -> float:
    """A realistic starting price: BTC/USDT ~ 30000, ETH/BTC ~ 0.067, unknown → 100."""
    base, _, quote = symbol.partition("/")
    if base not in USD_LEVELS:
        return 100.0
    return USD_LEVELS[base] / USD_LEVELS.get(quote, 1.0)


class _SyntheticSymbol:
    """One symbol's generated tape: contiguous closed candles and the forming one.

    A candle's ticks are a pure function of (seed, symbol, candle index counted from the
    tape's first candle, open), so any part of the tape can be regenerated instead of
    stored, and a fresh install sees the same recent history whatever the wall time.
    """

    def __init__(self, symbol: str, seed: int, base_ms: int, start_ts: int) -> None:
        self.key = zlib.crc32(symbol.encode())
        self.seed = seed
        self.base_ms = base_ms
        self.last_close = price_level(symbol)
        self.unit_volume = USD_DAILY_VOLUME / USD_LEVELS.get(symbol.split("/")[0], 100.0)
        self.unit_volume *= base_ms / DAY_MS
        self.rows: list[list[float]] = []
        self.first_ts = self.next_ts = start_ts
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._regimes: dict[int, tuple[float, float]] = {}

    def _regime(self, ts: int) -> tuple[float, float]:
        """Drift and volatility per base candle for the regime block containing ts."""
        block = (ts - self.first_ts) // (self.base_ms * REGIME_CANDLES)
        if block not in self._regimes:
            rng = np.random.default_rng([self.seed, self.key, block, 1])
            vol = float(rng.choice([0.0004, 0.0008, 0.0016], p=[0.35, 0.45, 0.2]))
            self._regimes[block] = (float(rng.normal(0.0, 0.03)) * vol, vol)
        return self._regimes[block]

    def ticks(self, ts: int) -> tuple[np.ndarray, np.ndarray]:
        """Tick prices and volumes of the candle opening at ts (closed or forming)."""
        if self._cache is not None and self._cache[0] == ts:
            return self._cache[1], self._cache[2]
        open_ = self.open_of(ts)
        drift, vol = self._regime(ts)
        rng = np.random.default_rng([self.seed, self.key, (ts - self.first_ts) // self.base_ms])
        steps = rng.normal(drift / TICKS, vol / np.sqrt(TICKS), TICKS)
        prices = open_ * np.exp(np.cumsum(steps))
        activity = 1.0 + 40.0 * float(np.abs(steps).sum())
        volumes = rng.gamma(2.0, self.unit_volume * activity / (2.0 * TICKS), TICKS)
        self._cache = (ts, prices, volumes)
        return prices, volumes

    def open_of(self, ts: int) -> float:
        if ts >= self.next_ts:
            return self.last_close
        return self.rows[(ts - self.first_ts) // self.base_ms][1]

    def close_through(self, now_ms: int) -> None:
        """Close every candle that has ended by now_ms."""
        while self.next_ts + self.base_ms <= now_ms:
            ts = self.next_ts
            prices, volumes = self.ticks(ts)
            o = self.last_close
            self.rows.append([ts, o, max(o, float(prices.max())), min(o, float(prices.min())),
                              float(prices[-1]), float(volumes.sum())])
            self.last_close = float(prices[-1])
            self.next_ts += self.base_ms

    def _k(self, ts: int, t: int) -> int:
        """How many ticks of the candle opening at ts have traded by time t."""
        return max(0, min(TICKS, (t - ts) * TICKS // self.base_ms))

    def _candle_start(self, t: int) -> int:
        return max(self.first_ts, (t // self.base_ms) * self.base_ms)

    def price_at(self, t: int) -> float:
        ts = self._candle_start(t)
        k = self._k(ts, t)
        return self.open_of(ts) if k == 0 else float(self.ticks(ts)[0][k - 1])

    def segment(self, start_ms: int, end_ms: int) -> Candle | None:
        """What traded in (start_ms, end_ms] as one [ts,o,h,l,c,v] candle."""
        o = self.price_at(start_ms)
        high, low, close, vol = o, o, o, 0.0
        ts = self._candle_start(start_ms)
        while ts <= end_ms and ts <= self.next_ts:
            lo, hi = self._k(ts, start_ms), self._k(ts, end_ms)
            if hi > lo:
                prices, volumes = self.ticks(ts)
                high = max(high, float(prices[lo:hi].max()))
                low = min(low, float(prices[lo:hi].min()))
                close = float(prices[hi - 1])
                vol += float(volumes[lo:hi].sum())
            ts += self.base_ms
        if vol == 0.0:
            return None
        return [start_ms, o, high, low, close, vol]


class SyntheticFeed:
    """A seeded, plausible market for running without data or network.

    Prices follow geometric Brownian motion whose drift and volatility switch in regimes of
    a few hours; each base candle is made of 60 ticks drawn from a generator keyed by
    (seed, symbol, candle index), so the tape is identical for a given seed and start time.
    The clock follows the wall clock: ``advance()`` closes candles as real time passes and
    ``current_candle()`` is what traded since the previous step, part of a forming candle.
    """

    kind = "synthetic"

    def __init__(
        self, symbols: Sequence[str], seed: int = 7, base_timeframe: str = "1m",
        start_ms: int | None = None, history: int = 6000,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``clock`` gives wall milliseconds; by default a ``SteadyClock``, which does not
        leap with the system clock."""
        if history < 500:
            raise FeedError("synthetic history must be at least 500 candles for indicators")
        self.symbols = list(symbols)
        self.seed = seed
        self.base_timeframe = base_timeframe
        self._base_ms = timeframe_ms(base_timeframe)
        self._steady = clock if isinstance(clock, SteadyClock) else None
        if clock is None:
            self._steady = clock = SteadyClock()
        self._clock = clock
        self._offset_ms = 0  # how far a stored clock ran ahead of ``clock`` (see ``seek``)
        wall = self._clock()
        if start_ms is None:
            start_ms = (wall // self._base_ms) * self._base_ms
        else:
            wall = start_ms
        self.start_ms = start_ms
        first = self.start_ms - history * self._base_ms
        self._tapes = {s: _SyntheticSymbol(s, seed, self._base_ms, first) for s in self.symbols}
        self._arrays: dict[str, np.ndarray] = {}
        self._prev = self._now = wall
        self._close_all(wall)

    def _close_all(self, now_ms: int) -> None:
        for tape in self._tapes.values():
            tape.close_through(now_ms)

    def _tape(self, symbol: str) -> _SyntheticSymbol:
        try:
            return self._tapes[symbol]
        except KeyError:
            raise FeedError(f"symbol {symbol} is not in this synthetic feed") from None

    def now_ms(self) -> int:
        return self._now

    def advance(self) -> bool:
        wall = self._clock() + self._offset_ms
        self._prev = self._now
        if wall > self._now:
            self._now = wall
            self._close_all(wall)
        return True

    def seek(self, now_ms: int) -> None:
        """Catch the tape up to a stored clock; an older clock (another tape) is ignored.

        A stored clock ahead of ours (written while the system clock was wrong) is kept, and
        the market runs on from it at the clock's pace instead of standing still until the
        clock catches up; ``clock_note`` names the lead.
        """
        if now_ms <= self._now:
            return
        self._offset_ms = max(0, now_ms - self._clock())
        self._close_all(now_ms)
        self._prev = self._now = now_ms

    def clock_note(self) -> str | None:
        """Why this market's time is not the system clock's, in words, or None."""
        jump = self._steady.jump_note() if self._steady is not None else None
        if self._offset_ms > JUMP_TOLERANCE_SECONDS * 1000:
            lead = (f"the synthetic market runs {describe_seconds(self._offset_ms / 1000)} "
                    "ahead of the system clock (its stored clock was ahead)")
            return f"{jump}; {lead}" if jump else lead
        return jump

    def _rows(self, symbol: str) -> np.ndarray:
        """The closed candles as an array, rebuilt only when the tape has grown."""
        rows = self._tape(symbol).rows
        cached = self._arrays.get(symbol)
        if cached is None or len(cached) != len(rows):
            cached = self._arrays[symbol] = np.asarray(rows, dtype=float).reshape(-1, 6)
        return cached

    def candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        return select_candles(
            self._rows(symbol), self._base_ms, timeframe, self._now, since_ms, limit
        )

    def current_candle(self, symbol: str) -> Candle | None:
        if self._now <= self._prev:
            return None
        return self._tape(symbol).segment(self._prev, self._now)

    def book(self, symbol: str, depth: int) -> Book:
        rows = self._rows(symbol)[-20:]
        book = book_from_rows(rows, depth)
        mid = self._tape(symbol).price_at(self._now)
        shift = mid / rows[-1, 4]
        for side in ("bids", "asks"):
            for level in book[side]:
                level[0] = float(level[0] * shift)
        return book

    def ticker(self, symbol: str) -> dict[str, Any]:
        rows = self._rows(symbol)
        ticker = ticker_from_rows(symbol, rows, self._now, self.book(symbol, 1))
        ticker["last"] = ticker["close"] = self._tape(symbol).price_at(self._now)
        ticker["info"] = {"simulated": True}
        return ticker

    def descriptor(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "start_ms": self.start_ms}
