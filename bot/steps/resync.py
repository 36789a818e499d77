"""Step 2: the snapshots of our open orders and positions, reconciled with the venue
(``bot.reconcile``); then the journal orders left unsent are sent (``bot.execution``)."""

from __future__ import annotations

from bot.execution import resume_unsent_orders
from bot.reconcile import reconcile_with_venue
from bot.runtime import Runtime


def resync_orders_and_positions(rt: Runtime) -> None:
    reconcile_with_venue(rt)
    resume_unsent_orders(rt)
