"""Whether a paper account is larger than its market could trade with.

STARTING_BALANCE is read in the pair's quote currency: 10,000 is 10,000 USDT on BTC/USDT
but 10,000 BTC on ETH/BTC, and entries sized as a share of it then exceed anything the book
holds. A balance this many times the median value a symbol trades per candle is far beyond
its market: an entry of ENTRY_VALUE_PCT (5%) of it is then half a candle's trading or more.

The market is sized on a run's first SIZING_CANDLES candles of its shortest timeframe:
what a bot reads at its start, a replay's file from its first row, and the candles a
replay run stored from its first, so that a replay's summary and the Replays page agree.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable

BALANCE_CANDLE_VALUE_MULTIPLE = 10.0
# A day of 5m candles: enough for a median of what a market trades per candle.
SIZING_CANDLES = 288


def median_candle_value(closes_and_volumes: Iterable[tuple[float, float]]) -> float:
    """The median of close × volume over candles: what the market trades per candle, in
    the quote currency (0.0 for none)."""
    values = [float(close) * float(volume) for close, volume in closes_and_volumes]
    return statistics.median(values) if values else 0.0


def oversized_balance(balance: float, symbol: str, timeframe: str,
                      candle_value: float) -> str | None:
    """A warning, in words, when ``balance`` is far beyond what ``symbol`` trades, or None."""
    quote = symbol.split("/")[-1]
    if balance <= BALANCE_CANDLE_VALUE_MULTIPLE * candle_value:
        return None
    times = f"{balance / candle_value:,.0f} times" if candle_value > 0 else "infinitely more than"
    return (f"the starting balance {balance:,.6g} {quote} (read in {symbol}'s quote currency) "
            f"is {times} the median value {symbol} trades per {timeframe} candle "
            f"({candle_value:,.6g} {quote}): entries sized from it are larger than the market "
            f"could fill; start with a balance in {quote} the market can trade")


def balance_warnings(balance: float, markets: Iterable[tuple[str, str, Iterable[tuple[float, float]]]]
                     ) -> list[str]:
    """The warnings for ``balance`` over ``markets`` (symbol, timeframe, and its candles'
    closes and volumes oldest first), each sized on its first SIZING_CANDLES candles."""
    found = (oversized_balance(balance, symbol, timeframe, median_candle_value(
        itertools.islice(candles, SIZING_CANDLES))) for symbol, timeframe, candles in markets)
    return [warning for warning in found if warning]
