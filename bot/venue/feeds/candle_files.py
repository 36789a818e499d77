"""Candle CSV files: the name that says the symbol and timeframe, and loading that refuses
anything malformed, naming the file and row."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bot.venue.feeds.base import FeedError, timeframe_ms

HEADER = ["timestamp", "open", "high", "low", "close", "volume"]


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
