"""Market data feeds for the paper venue: recorded candles, a synthetic market, or live prices.

A feed owns the clock of a paper run. Everything it hands out is what was knowable at that
clock: ``candles()`` returns closed candles only, so a strategy replayed over history never
sees a candle before it has closed. ``current_candle()`` is the market action that traded
since the previous step; the paper venue fills resting orders against it, so an order can
only fill on prices that traded after it was placed.

Feeds raise ``VenueError`` subclasses (``FeedError`` for bad input, ``TransientVenueError``
for network trouble) so that the venue's "return a value or raise a VenueError" contract
holds through them.

One module per job: ``base`` (the protocol, its error, shapes and timeframes),
``from_candles`` (timeframes, book and ticker derived from closed candles), ``candle_files``
(loading and checking candle CSVs), and one module per feed (``replay``, ``synthetic``,
``live``). Everything callers use is importable from ``bot.venue.feeds`` itself.
"""

from __future__ import annotations

from bot.venue.feeds.base import (
    Book,
    Candle,
    Feed,
    FeedError,
    iso_ms,
    merge_candles,
    timeframe_ms,
)
from bot.venue.feeds.candle_files import load_candles, parse_candle_name
from bot.venue.feeds.live import LiveFeed
from bot.venue.feeds.replay import ReplayFeed
from bot.venue.feeds.synthetic import SyntheticFeed, price_level

__all__ = [
    "Book", "Candle", "Feed", "FeedError", "LiveFeed", "ReplayFeed", "SyntheticFeed", "iso_ms",
    "load_candles", "merge_candles", "parse_candle_name", "price_level", "timeframe_ms",
]
