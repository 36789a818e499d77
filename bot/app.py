"""Assemble a runtime from settings: store, venue, engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial

from bot.alerts.sink import EventSink
from bot.config import Settings
from bot.engine.factory import build_engine, build_shadow
from bot.model.market_size import SIZING_CANDLES, balance_warnings
from bot.model.timeframes import timeframe_delta
from bot.notify import CommandListener
from bot.runtime import Runtime
from bot.venue.base import VenueError
from bot.venue.factory import build_venue
from db.bots import register_bot
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.paper_store import PaperStore

log = logging.getLogger(__name__)


def build_runtime(settings: Settings) -> Runtime:
    """The live bot (paper or real venue); replays assemble theirs in ``bot.replay``."""
    upgrade(settings.database_url)
    factory = session_factory(make_engine(settings.database_url))
    with factory() as db:  # one of the fleet from its start: commands for it are taken
        register_bot(db, settings.bot_name, datetime.now(UTC))
        db.commit()
    venue = build_venue(settings, partial(PaperStore, factory))
    return Runtime(settings=settings, db=factory, venue=venue, engine=build_engine(settings),
                   shadow=build_shadow(settings), run_name=settings.bot_name,
                   events=EventSink.from_settings(settings),
                   command_listener=CommandListener.for_url(settings.database_url,
                                                            settings.bot_name))


def warn_of_oversized_balance(rt: Runtime) -> list[str]:
    """Log, and return, a warning per symbol whose market the paper account's starting
    balance is far beyond (``bot.model.market_size``). A real exchange's balance is its own.
    """
    if not rt.settings.is_paper:
        return []
    timeframe = min(rt.settings.timeframes, key=timeframe_delta)
    markets = []
    for symbol in rt.settings.symbols:
        try:
            candles = rt.venue.fetch_ohlcv(symbol, timeframe, limit=SIZING_CANDLES)
        except VenueError as exc:  # the loop names a market that does not answer
            log.info("no candles of %s to size the balance against: %s", symbol, exc)
            continue
        markets.append((symbol, timeframe, [(c[4], c[5]) for c in candles]))
    warnings = balance_warnings(rt.settings.starting_balance, markets)
    for warning in warnings:
        log.warning(warning)
    return warnings
