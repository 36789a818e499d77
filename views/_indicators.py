"""Chart overlays computed in pandas on the page side.

The console draws its own indicators instead of importing the bot's engine: pages never
import the venue or the engine, so a console bug can't reach trading code (and vice versa).
"""

from __future__ import annotations

import pandas as pd


def ema(close: pd.Series, span: int) -> pd.Series:
    """Exponential moving average seeded like most charting tools (adjust=False)."""
    return close.ewm(span=span, adjust=False, min_periods=span).mean()


def bollinger(close: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Middle, upper and lower band; population std (ddof=0) as in Bollinger's definition."""
    mid = close.rolling(window, min_periods=window).mean()
    std = close.rolling(window, min_periods=window).std(ddof=0)
    return pd.DataFrame({"mid": mid, "upper": mid + k * std, "lower": mid - k * std})
