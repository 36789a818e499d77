"""Crafted candle files for scenarios real candles cannot pin down (a wick, a midnight).

Each candle opens at the previous close; its high and low sit a hair outside open and
close unless a wick is given. The first ``WARMUP`` rows are the replay feed's warm-up, so
the loop's first iteration sees the close of row ``WARMUP - 1``.
"""

from __future__ import annotations

from pathlib import Path

WARMUP = 200
FIVE_MIN_MS = 300_000
DEFAULT_START_MS = 1_700_000_000_000 - (1_700_000_000_000 % FIVE_MIN_MS)


def write_path(
    path: Path, closes: list[float], *, start_ms: int = DEFAULT_START_MS,
    wicks: dict[int, tuple[float, float]] | None = None, volume: float = 50.0,
    opens: dict[int, float] | None = None,
) -> Path:
    """Write ``closes`` as 5m candles; ``wicks[i] = (high, low)`` overrides candle ``i``'s
    range and ``opens[i]`` its open (a gap)."""
    wicks, opens = wicks or {}, opens or {}
    lines = ["timestamp,open,high,low,close,volume"]
    previous = closes[0]
    for i, close in enumerate(closes):
        previous = opens.get(i, previous)
        high, low = wicks.get(i, (max(previous, close) * 1.0002, min(previous, close) * 0.9998))
        lines.append(f"{start_ms + i * FIVE_MIN_MS},{previous},{high},{low},{close},{volume}")
        previous = close
    path.write_text("\n".join(lines) + "\n")
    return path


def flat_then(path: Path, after: list[float], level: float = 100.0, **kwargs) -> Path:
    """Warm-up (and the first decision) at ``level``, then the candles in ``after``."""
    return write_path(path, [level] * WARMUP + after, **kwargs)
