"""What a candle-backed feed derives from its closed base candles: other timeframes (rolled
up like an exchange's), a plausible order book and a ccxt ticker."""

from __future__ import annotations

from typing import Any

import numpy as np

from bot.venue.feeds.base import DAY_MS, Book, Candle, FeedError, iso_ms, timeframe_ms


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
