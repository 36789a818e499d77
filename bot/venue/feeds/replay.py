"""The replay feed: recorded candle files stepped in lockstep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.venue.feeds.base import Book, Candle, FeedError, timeframe_ms
from bot.venue.feeds.candle_files import load_candles, parse_candle_name
from bot.venue.feeds.from_candles import book_basis, select_candles, synthetic_book, ticker_from_rows


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

    def all_rows(self, symbol: str) -> np.ndarray:
        """Every candle of ``symbol``'s file, warm-up and future included: for sizing the
        run up before it starts, never for a decision."""
        return self._rows[symbol]

    def _check_overlap(self) -> None:
        start = max(r[0, 0] for r in self._rows.values())
        end = min(r[-1, 0] for r in self._rows.values())
        if start > end:
            names = ", ".join(str(p) for p in self.paths)
            raise FeedError(f"candle files do not overlap in time: {names}")

    def now_ms(self) -> int:
        return int(self._steps[self._i]) + self._base_ms

    def span_ms(self) -> tuple[int, int]:
        """The clocks of the first step a replay takes (after the warm-up) and of the last."""
        return (int(self._steps[self.warmup - 1]) + self._base_ms,
                int(self._steps[-1]) + self._base_ms)

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
