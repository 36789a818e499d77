"""Assemble a runtime from settings: store, venue, engine."""

from __future__ import annotations

from functools import partial

from bot.alerts.sink import EventSink
from bot.config import Settings
from bot.engine.factory import build_engine
from bot.notify import CommandListener
from bot.runtime import Runtime
from bot.venue.factory import build_venue
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.paper_store import PaperStore


def build_runtime(settings: Settings) -> Runtime:
    """The live bot (paper or real venue); replays assemble theirs in ``bot.replay``."""
    upgrade(settings.database_url)
    factory = session_factory(make_engine(settings.database_url))
    venue = build_venue(settings, partial(PaperStore, factory))
    return Runtime(settings=settings, db=factory, venue=venue, engine=build_engine(settings),
                   run_name=settings.bot_name, events=EventSink.from_settings(settings),
                   command_listener=CommandListener.for_url(settings.database_url,
                                                            settings.bot_name))
