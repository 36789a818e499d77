"""Pick the venue the settings name: the paper venue (default) or a ccxt exchange."""

from __future__ import annotations

from bot.config import Settings
from bot.venue.base import Venue
from bot.venue.paper_account import OpenStore


def build_venue(settings: Settings, open_store: OpenStore) -> Venue:
    """``open_store``: the paper account's store, used by the paper venue only."""
    if settings.is_paper:
        from bot.venue.paper import PaperVenue

        return PaperVenue.from_settings(settings, open_store)
    from bot.venue.ccxt_venue import CcxtVenue

    return CcxtVenue.from_settings(settings)
