"""Market data feeds for the paper venue: recorded candles, a synthetic market, or live prices.

A feed owns the clock of a paper run. Everything it hands out is what was knowable at that
clock: ``candles()`` returns closed candles only, so a strategy replayed over history never
sees a candle before it has closed. ``current_candle()`` is the market action that traded
since the previous step; the paper venue fills resting orders against it, so an order can
only fill on prices that traded after it was placed.

Feeds raise ``VenueError`` subclasses (``FeedError`` for bad input, ``TransientVenueError``
for network trouble) so that the venue's "return a value or raise a VenueError" contract
holds through them.
"""

from __future__ import annotations

import csv
import time
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

import numpy as np

from bot.clock import JUMP_TOLERANCE_SECONDS, SteadyClock, describe_seconds
from bot.venue.base import TransientVenueError, VenueError

Candle = list[float]
Book = dict[str, list[list[float]]]
HEADER = ["timestamp", "open", "high", "low", "close", "volume"]
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


@runtime_checkable
class Feed(Protocol):
    """What the paper venue needs from a market: a clock, closed candles, a book, a ticker."""

    kind: str  # 'replay' | 'synthetic' | 'live'
    base_timeframe: str
    symbols: list[str]

    def now_ms(self) -> int: ...

    def advance(self) -> bool:
        """Step the clock one base candle (or to the wall clock); False when a replay ends."""

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

    def clock_note(self) -> str | None:
        """Why the market's time is not the system clock's (a clock jump), or None."""


# --- shared helpers ----------------------------------------------------------------------


def aggregate(rows: np.ndarray, base_ms: int, target_ms: int, now_ms: int) -> np.ndarray:
    """Roll base candles up into ``target_ms`` buckets, keeping only buckets closed at now.

    Buckets are aligned to the epoch like an exchange's; a bucket with missing base candles
    aggregates what exists rather than inventing prices.
    """
    if target_ms % base_ms:
        raise FeedError(f"timeframe of {target_ms} ms is not a multiple of the base {base_ms} ms")
    if len(rows) == 0:
        return rows.reshape(0, 6)
    buckets = (rows[:, 0].astype(np.int64) // target_ms) * target_ms
    keep = buckets + target_ms <= now_ms
    rows, buckets = rows[keep], buckets[keep]
    if len(rows) == 0:
        return rows.reshape(0, 6)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(rows)] - 1
    out = np.empty((len(starts), 6))
    out[:, 0] = buckets[starts]
    out[:, 1] = rows[starts, 1]
    out[:, 2] = np.maximum.reduceat(rows[:, 2], starts)
    out[:, 3] = np.minimum.reduceat(rows[:, 3], starts)
    out[:, 4] = rows[ends, 4]
    out[:, 5] = np.add.reduceat(rows[:, 5], starts)
    return out


def select_candles(
    rows: np.ndarray, base_ms: int, timeframe: str, now_ms: int,
    since_ms: int | None, limit: int | None,
) -> list[Candle]:
    """Closed candles of ``timeframe`` from base rows (already cut at the clock), ccxt-style.

    Only the rows that can reach the answer are aggregated, so a ``limit`` call stays cheap
    however long the history is.
    """
    target = timeframe_ms(timeframe)
    if target < base_ms or target % base_ms:
        raise FeedError(f"timeframe {timeframe} is not a multiple of the feed's base candles")
    if target != base_ms and since_ms is not None and _first_close(since_ms, target) > now_ms:
        return []  # the usual poll between two closes: nothing to aggregate
    ts = rows[:, 0]
    if since_ms is not None:
        rows = rows[np.searchsorted(ts, (since_ms // target) * target) :]
    elif limit is not None:
        last_closed = (now_ms // target) * target - target
        rows = rows[np.searchsorted(ts, last_closed - (limit - 1) * target) :]
    out = rows if target == base_ms else aggregate(rows, base_ms, target, now_ms)
    if since_ms is not None:
        out = out[out[:, 0] >= since_ms]
        if limit is not None:
            out = out[:limit]
    elif limit is not None:
        out = out[-limit:] if limit > 0 else out[:0]
    return [[int(r[0]), *map(float, r[1:])] for r in out]


def _first_close(since_ms: int, target_ms: int) -> int:
    """When the first epoch-aligned bucket starting at or after ``since_ms`` closes."""
    return -(-since_ms // target_ms) * target_ms + target_ms


def synthetic_book(mid: float, recent_range_pct: float, avg_volume: float, depth: int) -> Book:
    """A plausible depth ladder around ``mid``.

    The spread widens with the recent range (volatile markets quote wider), levels are spaced
    by the spread, and level sizes grow with depth, the top level holding about 2% of an
    average candle's volume, so a large order walks into visible slippage.
    """
    spread = min(max(recent_range_pct * 0.05, 1e-4), 5e-3)
    top = max(avg_volume, 1e-9) * 0.02
    bids, asks = [], []
    for k in range(depth):
        offset = spread / 2 + k * spread
        size = top * (1 + 0.5 * k)
        bids.append([mid * (1 - offset), size])
        asks.append([mid * (1 + offset), size])
    return {"bids": bids, "asks": asks}


def book_from_rows(rows: np.ndarray, depth: int, window: int = 20) -> Book:
    """The synthetic book implied by the last closed candles of a symbol."""
    return synthetic_book(*book_basis(rows, window), depth)


def book_basis(rows: np.ndarray, window: int = 20) -> tuple[float, float, float]:
    """What ``synthetic_book`` builds a symbol's book from: the last close, the mean range
    (%) and the mean volume of the last ``window`` closed candles."""
    if len(rows) == 0:
        raise FeedError("no closed candle yet: no price to quote a book around")
    recent = rows[-window:]
    # sum / count is what np.mean computes, without its dispatch (two calls per step)
    range_pct = float(((recent[:, 2] - recent[:, 3]) / recent[:, 4]).sum() / len(recent))
    avg_volume = float(recent[:, 5].sum() / len(recent))
    return float(recent[-1, 4]), range_pct, avg_volume


def ticker_from_rows(symbol: str, rows: np.ndarray, now_ms: int, book: Book) -> dict[str, Any]:
    """A ccxt ticker from closed candles: last close, top of book, and 24h figures."""
    # rows are sorted by time: the day is a slice, not a mask over the whole history
    day = rows[int(np.searchsorted(rows[:, 0], now_ms - DAY_MS)):]
    last = float(rows[-1, 4])
    bid, ask = book["bids"][0], book["asks"][0]
    base_volume = float(day[:, 5].sum()) if len(day) else 0.0
    return {
        "symbol": symbol, "timestamp": now_ms, "datetime": iso_ms(now_ms),
        "last": last, "close": last, "bid": bid[0], "bidVolume": bid[1],
        "ask": ask[0], "askVolume": ask[1],
        "open": float(day[0, 1]) if len(day) else last,
        "high": float(day[:, 2].max()) if len(day) else last,
        "low": float(day[:, 3].min()) if len(day) else last,
        "baseVolume": base_volume, "quoteVolume": float((day[:, 5] * day[:, 4]).sum()),
        "info": {},
    }


@lru_cache(maxsize=256)  # a step asks for its clock's form several times (ticker, book, balance)
def iso_ms(ms: int) -> str:
    """ccxt's ISO 8601 form of a millisecond timestamp."""
    secs, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


# --- replay --------------------------------------------------------------------------------


def parse_candle_name(path: Path) -> tuple[str, str]:
    """``BTC_USDT-5m.csv`` → (``BTC/USDT``, ``5m``)."""
    stem = path.name.removesuffix(".csv")
    pair, sep, timeframe = stem.rpartition("-")
    base, usep, quote = pair.partition("_")
    if not sep or not usep or not base or not quote:
        raise FeedError(f"{path}: name must look like BASE_QUOTE-5m.csv")
    timeframe_ms(timeframe)
    return f"{base}/{quote}", timeframe


MAX_LINE_BYTES = 1024  # a candle row is under 100 bytes; a longer line is not one
EARLIEST_MS = 1_230_768_000_000  # 2009-01-01: no crypto market traded before
LATEST_MS = 4_102_444_800_000  # 2100-01-01


def load_candles(path: Path) -> np.ndarray:
    """Read one candle CSV into an (n, 6) float array, refusing anything malformed: a bad
    file is named with its row and what is wrong before a replay writes anything."""
    if not path.is_file():
        raise FeedError(f"{path}: no such candle file")
    with path.open("rb") as handle:
        header = _csv_line(path, handle, 1)
        if header is None or [h.strip().lower() for h in header] != HEADER:
            raise FeedError(f"{path} row 1: header must be {','.join(HEADER)}, got {header}")
        data: list[list[float]] = []
        line = 1
        while (row := _csv_line(path, handle, line := line + 1)) is not None:
            if len(row) != 6:
                raise FeedError(f"{path} row {line}: expected 6 columns, got {len(row)}")
            try:
                data.append([float(v) for v in row])
            except ValueError as exc:
                raise FeedError(f"{path} row {line}: {exc}") from None
    if not data:
        raise FeedError(f"{path}: no candles")
    rows = np.asarray(data, dtype=float)
    _check_values(path, rows)
    steps = np.diff(rows[:, 0])
    if (steps <= 0).any():
        bad = int(np.flatnonzero(steps <= 0)[0])
        what = "duplicate" if steps[bad] == 0 else "unsorted"
        raise FeedError(f"{path} row {bad + 3}: {what} timestamp {int(rows[bad + 1, 0])}")
    return rows


def _csv_line(path: Path, handle: BinaryIO, line: int) -> list[str] | None:
    """The next line's fields (None at the end), read no further than MAX_LINE_BYTES."""
    raw = handle.readline(MAX_LINE_BYTES + 1)
    if not raw:
        return None
    if len(raw) > MAX_LINE_BYTES:
        raise FeedError(f"{path} row {line}: line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{path} row {line}: not UTF-8 text (byte {raw[exc.start]:#04x} at "
                        f"column {exc.start + 1})") from None
    return next(csv.reader([text]), [])


def _check_values(path: Path, rows: np.ndarray) -> None:
    """Every value finite, prices positive, each candle's high and low bounding its open and
    close, timestamps in milliseconds within the years markets traded: a candle breaking
    any of these would trade on prices that never were."""
    ts, open_, high, low, close, volume = rows.T
    unit = ("looks like seconds; timestamps are milliseconds since the epoch"
            if EARLIEST_MS <= ts[0] * 1000 <= LATEST_MS else
            "looks like microseconds; timestamps are milliseconds since the epoch"
            if EARLIEST_MS <= ts[0] / 1000 <= LATEST_MS else
            "is outside 2009 to 2100; timestamps are milliseconds since the epoch")
    prices = {"open": open_, "high": high, "low": low, "close": close}
    checks: list[tuple[np.ndarray, Callable[[int], str]]] = [
        (~np.isfinite(rows).all(axis=1), lambda i: "non-finite value"),
        (volume < 0, lambda i: f"volume {volume[i]:g} is negative"),
        *((values <= 0, lambda i, n=name, v=values: f"{n} {v[i]:g} is not positive")
          for name, values in prices.items()),
        (high < low, lambda i: f"high {high[i]:g} is below low {low[i]:g}"),
        *((values > high, lambda i, n=name, v=values: f"{n} {v[i]:g} is above high {high[i]:g}")
          for name, values in (("open", open_), ("close", close))),
        *((values < low, lambda i, n=name, v=values: f"{n} {v[i]:g} is below low {low[i]:g}")
          for name, values in (("open", open_), ("close", close))),
        ((ts < EARLIEST_MS) | (ts > LATEST_MS), lambda i: f"timestamp {ts[i]:.0f} {unit}"),
    ]
    first = min(((int(np.flatnonzero(bad)[0]), describe) for bad, describe in checks
                 if bad.any()), default=None, key=lambda found: found[0])
    if first is not None:
        index, describe = first
        raise FeedError(f"{path} row {index + 2}: {describe(index)}")


class ReplayFeed:
    """Recorded candle files replayed in lockstep on the union of their timestamps.

    Per symbol it keeps the rows and, per step, how many rows are closed, so every call at
    a step is a slice: loading is one pass and stepping is O(1).
    """

    kind = "replay"

    def __init__(self, paths: Sequence[str | Path], warmup: int = 200) -> None:
        if not paths:
            raise FeedError("replay feed needs at least one candle file")
        self.paths = [Path(p) for p in paths]
        self._rows: dict[str, np.ndarray] = {}
        timeframes = set()
        for path in self.paths:
            symbol, timeframe = parse_candle_name(path)
            if symbol in self._rows:
                raise FeedError(f"{path}: {symbol} is given twice")
            self._rows[symbol] = load_candles(path)
            timeframes.add(timeframe)
        if len(timeframes) != 1:
            raise FeedError(f"candle files mix timeframes {sorted(timeframes)}")
        self.base_timeframe = timeframes.pop()
        self._base_ms = timeframe_ms(self.base_timeframe)
        self.symbols = list(self._rows)
        self._check_overlap()
        self._steps = np.unique(np.concatenate([r[:, 0] for r in self._rows.values()]))
        self._closed = {s: np.searchsorted(r[:, 0], self._steps, side="right")
                        for s, r in self._rows.items()}
        if warmup < 1 or warmup > len(self._steps):
            raise FeedError(
                f"warm-up of {warmup} candles needs at least as many steps, got {len(self._steps)}"
            )
        self.warmup = warmup
        self._i = warmup - 1
        self._basis: dict[str, tuple[int, tuple[float, float, float]]] = {}  # symbol -> (step, basis)

    def _check_overlap(self) -> None:
        start = max(r[0, 0] for r in self._rows.values())
        end = min(r[-1, 0] for r in self._rows.values())
        if start > end:
            names = ", ".join(str(p) for p in self.paths)
            raise FeedError(f"candle files do not overlap in time: {names}")

    def now_ms(self) -> int:
        return int(self._steps[self._i]) + self._base_ms

    def advance(self) -> bool:
        if self._i + 1 >= len(self._steps):
            return False
        self._i += 1
        return True

    def seek(self, now_ms: int) -> None:
        i = int(np.searchsorted(self._steps, now_ms - self._base_ms))
        if i >= len(self._steps) or int(self._steps[i]) + self._base_ms != now_ms:
            raise FeedError(f"clock {now_ms} is not a step of this replay ({self.paths})")
        self._i = i

    def remaining_steps(self, until_ms: int | None = None) -> int:
        """Steps after the current one: to the end, or to the first whose clock reaches
        ``until_ms`` (where a replay with an end stops)."""
        last = len(self._steps) - 1
        if until_ms is not None:
            last = min(last, int(np.searchsorted(self._steps, until_ms - self._base_ms)))
        return max(0, last - self._i)

    def _closed_rows(self, symbol: str) -> np.ndarray:
        try:
            rows = self._rows[symbol]
        except KeyError:
            raise FeedError(f"symbol {symbol} is not in this replay") from None
        return rows[: self._closed[symbol][self._i]]

    def candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        return select_candles(
            self._closed_rows(symbol), self._base_ms, timeframe, self.now_ms(), since_ms, limit
        )

    def current_candle(self, symbol: str) -> Candle | None:
        rows = self._closed_rows(symbol)
        if len(rows) == 0 or int(rows[-1, 0]) != int(self._steps[self._i]):
            return None
        return [int(rows[-1, 0]), *map(float, rows[-1, 1:])]

    def book(self, symbol: str, depth: int) -> Book:
        return synthetic_book(*self._book_basis(symbol), depth)

    def ticker(self, symbol: str) -> dict[str, Any]:
        return ticker_from_rows(symbol, self._closed_rows(symbol), self.now_ms(),
                                self.book(symbol, 1))

    def _book_basis(self, symbol: str) -> tuple[float, float, float]:
        """The symbol's ``book_basis`` at this step, computed once for the ticker and book."""
        cached = self._basis.get(symbol)
        if cached is None or cached[0] != self._i:
            cached = self._basis[symbol] = (self._i, book_basis(self._closed_rows(symbol)))
        return cached[1]

    def descriptor(self) -> dict[str, Any]:
        return {"kind": self.kind, "paths": [str(p) for p in self.paths]}

    def clock_note(self) -> str | None:
        return None  # a replay's clock is its candles'


# --- synthetic -----------------------------------------------------------------------------

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


# --- live ----------------------------------------------------------------------------------


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
        self._steady = SteadyClock() if clock is None else None
        self._clock = clock or self._steady
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
            self._current[symbol] = _merge(fresh) if fresh else None
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


def _merge(candles: list[Candle]) -> Candle:
    return [candles[0][0], candles[0][1], max(c[2] for c in candles),
            min(c[3] for c in candles), candles[-1][4], sum(c[5] for c in candles)]
