"""Step 3: book our venue fills into ``trades``, exactly once each (``bot.booking``)."""

from __future__ import annotations

from bot.booking import book_new_fills
from bot.runtime import Runtime


def sync_fills(rt: Runtime) -> int:
    """Book new fills; returns how many were booked."""
    return book_new_fills(rt)
