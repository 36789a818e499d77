"""Pick the venue the settings name: the paper venue (default) or a ccxt exchange."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.venue.base import Venue


def build_venue(settings: Settings, db: sessionmaker) -> Venue:
    if settings.is_paper:
        from bot.venue.paper import PaperVenue

        return PaperVenue.from_settings(settings, db)
    from bot.venue.ccxt_venue import CcxtVenue

    return CcxtVenue.from_settings(settings)
