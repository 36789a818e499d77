"""Chart overlays on the page side.

Pages never import the venue or the engine, so a console bug can't reach trading code (and
vice versa); the EMA comes from ``bot.model.averages``, the definition and the spans (12 and
26) the engine decides on. The engine computes it over its newest 300 candles and the chart
over its whole frame: the two seeds differ, and by the newest candle the difference has
faded below a billionth of the price (``tests/test_shared_ema.py``).
"""

from __future__ import annotations

import pandas as pd

from bot.model.averages import ema_of


def ema(close: pd.Series, span: int) -> pd.Series:
    """The engine's EMA: seeded with the mean of the first ``span`` closes (NaN before)."""
    return pd.Series(ema_of(close.to_numpy(dtype=float), span), index=close.index)


def bollinger(close: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Middle, upper and lower band; population std (ddof=0) as in Bollinger's definition."""
    mid = close.rolling(window, min_periods=window).mean()
    std = close.rolling(window, min_periods=window).std(ddof=0)
    return pd.DataFrame({"mid": mid, "upper": mid + k * std, "lower": mid - k * std})
