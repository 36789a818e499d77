"""Stops resting on the venue (``STOPLOSS_ON_EXCHANGE``): a dead bot still has its stops.

Once a plan's entry has filled, its stop is placed on the venue as a stop order for what the
plan holds, journaled first like every order (purpose ``stop``) under the bot's prefix. The
plan step keeps it current: a stop moved (an update, the breakeven trail) or a size changed
(a partial exit) replaces it, cancel then new; every other exit of the plan (target, expiry,
the engine, close-all) cancels it first, since it holds the coins an exit sells. Its fill is
the plan's exit, booked by the fill sync with the stop's reason. A restarted bot finds it in
the journal (resync keeps the journal in step with the venue) and does not place it again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.execution import GONE, cancel_order, journal_new_order, send_journaled
from bot.guard import stop_reason
from bot.model.vocabulary import OrderPurpose, OrderStatus, OrderType, closing_side
from bot.positions import DUST
from bot.runtime import Runtime
from db.models import Order, TradePlan
from db.orders import exits_of_plan, live_order_of_plan, mark
from db.trades import booked_quantity

log = logging.getLogger("tradedesk.stops")

def resting_stop(db, plan: TradePlan) -> Order | None:
    """The plan's live stop order in the journal, if any."""
    return live_order_of_plan(db, plan.id, OrderPurpose.STOP)


def is_current(rt: Runtime, plan: TradePlan, held: float) -> bool:
    """Whether the plan's resting stop, as this runtime last placed or found it, stands for
    its stop and size (always, with the setting off): the plan step's quiet check."""
    if not rt.settings.stoploss_on_exchange:
        return True
    known = rt.store.resting_stops.get(plan.id)
    return known is not None and known[0] == plan.stop_price and abs(known[1] - held) <= DUST


def keep_resting(rt: Runtime, db, plan: TradePlan, held: float) -> None:
    """Place the plan's stop on the venue for ``held``, or replace the one resting there
    when its stop or size differs. A failed placement is logged; the bot's own watch of the
    stop still guards the plan, and the next iteration tries again."""
    order = resting_stop(db, plan)
    if order is not None and order.price == plan.stop_price and abs(order.amount - held) <= DUST:
        rt.store.stop_rests(plan.id, plan.stop_price, held)
        return
    if order is not None:
        gone = cancel_order(rt, db, order) == GONE
        rt.store.stop_lifted(plan.id)
        if gone:  # it may have sold the plan as it was replaced: see ``_sold_unseen``
            mark(order, rt.now(), status=OrderStatus.CLOSED)
            db.commit()
            return
    elif _sold_unseen(rt, db, plan):
        return
    order = journal_new_order(
        rt, db, symbol=plan.symbol, side=closing_side(plan.side), amount=held,
        purpose=OrderPurpose.STOP, reason=stop_reason(plan.stop_price), order_type=OrderType.STOP,
        price=plan.stop_price, plan_id=plan.id, trace_id=plan.trace_id,
    )
    placement = send_journaled(rt, db, order)
    if placement.ok:
        rt.store.stop_rests(plan.id, plan.stop_price, held)
    else:
        log.error("stop of plan %d not placed on the venue: %s", plan.id, placement.error)


def _sold_unseen(rt: Runtime, db, plan: TradePlan) -> bool:
    """Whether a stop of the plan that left the venue lately (filled, or found gone as it
    was replaced) may have sold what no booked fill shows yet: the fill sync books it (and
    closes the plan) first; a stop for those coins again would sell what is not the plan's
    (another bot's, on a shared account). A few loop intervals on, it was not a fill."""
    grace = timedelta(seconds=3 * rt.settings.loop_interval_seconds)
    now = rt.now()
    return any(order.purpose == OrderPurpose.STOP and order.status == OrderStatus.CLOSED
               and now - order.updated_at < grace
               and booked_quantity(db, order.client_order_id) + DUST < order.amount
               for order in exits_of_plan(db, plan.id, stops=True))


def cancel_resting(rt: Runtime, db, plan: TradePlan) -> None:
    """Before any other exit of the plan: take its stop off the venue."""
    if not rt.settings.stoploss_on_exchange:
        return
    order = resting_stop(db, plan)
    if order is not None:
        cancel_order(rt, db, order)
    rt.store.stop_lifted(plan.id)
