"""A random walk of 5-minute candles calibrated on ``BTC_USDT-5m.csv``: any length of
history with the real file's moves, wicks and volumes, for the long benches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CANDLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"
FIVE_MINUTES_MS = 300_000


def random_walk(path: Path, candles: int, seed: int = 20) -> Path:
    """5-minute candles whose moves, wicks and volumes are drawn like BTC_USDT-5m.csv's."""
    source = pd.read_csv(CANDLES / "BTC_USDT-5m.csv")
    moves = np.diff(np.log(source["close"].to_numpy()))
    body_top = np.maximum(source["open"], source["close"]).to_numpy()
    body_low = np.minimum(source["open"], source["close"]).to_numpy()
    upper = source["high"].to_numpy() / body_top - 1
    lower = 1 - source["low"].to_numpy() / body_low
    rng = np.random.default_rng(seed)
    close = source["close"].iloc[0] * np.exp(np.cumsum(
        rng.normal(moves.mean(), moves.std(), candles)))
    opened = np.concatenate([[source["close"].iloc[0]], close[:-1]])
    pick = rng.integers(0, len(source), candles)
    high = np.maximum(opened, close) * (1 + upper[pick])
    low = np.minimum(opened, close) * (1 - lower[pick])
    start = int(source["timestamp"].iloc[0])
    pd.DataFrame({"timestamp": start + np.arange(candles) * FIVE_MINUTES_MS,
                  "open": opened.round(2), "high": high.round(2), "low": low.round(2),
                  "close": close.round(2),
                  "volume": source["volume"].to_numpy()[pick]}).to_csv(path, index=False)
    return path
