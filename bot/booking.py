"""Booking a fill and exiting a plan: the two operations every step that trades shares.

Fills: our venue fills go into ``trades``, exactly once each. Window: the whole of the last
TRADE_SYNC_CUTOFF_MINUTES on every pass, not just what came after the last booked fill:
venues show some fills late, stamped earlier than fills already booked, and a window that
starts at the newest booked fill never sees them. A fill is booked once per venue trade id
(checked first, against the ids this runtime saw booked and then in one query for the rest,
and guarded by a unique constraint so a crash between the check and the commit cannot
double-book). A fill is read from the venue's shape once, into a ``bot.model.fill.Fill``,
and booked in that shape. Each fill's trade row, stats cache update, plan update and the position
snapshot it leaves commit in one transaction. The fill sync step, plan enforcement and the
operator's commands all book through ``book_new_fills``.

Exits: ``exit_plan`` is how the plan step, the engine's actions and the operator's close
take a plan out of the market, sized from what it actually holds.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError

from bot.execution import (
    Placement,
    cancel_order,
    journal_new_order,
    learn_given_up,
    next_client_order_id,
    send_journaled,
    venue_id_of,
)
from bot.fees import fee_in_quote
from bot.fleet import client_id_of
from bot.model.figures import figure
from bot.model.fill import Fill
from bot.model.vocabulary import (
    LIVE_ORDER,
    OrderPurpose,
    OrderStatus,
    OrderType,
    PlanStatus,
    closing_side,
)
from bot.position_snapshot import positions_written, write_positions
from bot.positions import DUST, Holding
from bot.resting_stop import cancel_resting
from bot.runtime import Runtime
from bot.venue.base import OrderNotFound
from db.models import Order, TradePlan
from db.orders import (
    by_client_id,
    by_venue_id,
    exits_of_plan,
    mark,
    with_plan_by_client_id,
)
from db.plans import revise_plan
from db.sessions import find_session, trading_day
from db.trades import booked_quantity, plan_fills, record_trade

log = logging.getLogger("tradedesk.fills")
exits_log = logging.getLogger("tradedesk.plans")  # an exit is a plan's event


def sync_window_start_ms(rt: Runtime, now: datetime) -> int:
    """TRADE_SYNC_CUTOFF_MINUTES before now, or before the last whole sync when that is
    older (``Runtime.fills_synced_at``)."""
    synced = now if rt.fills_synced_at is None else min(now, rt.fills_synced_at)
    cutoff = synced - timedelta(minutes=rt.settings.trade_sync_cutoff_minutes)
    return int(cutoff.timestamp() * 1000)


def book_new_fills(rt: Runtime) -> int:
    """Book new fills; returns how many were booked."""
    now = rt.now()
    window, fresh = fetch_window(rt, now)
    booked = 0
    if fresh:
        with rt.db() as db:
            for fill in unbooked_fills(rt, db, window, fresh):
                if book_fill(rt, db, fill, now):
                    booked += 1
    rt.fills_synced_at = now
    return booked


def fetch_window(rt: Runtime, now: datetime) -> tuple[set[str], list[Fill]]:
    """The venue's fill ids in the sync window, and its fills this runtime did not see booked.

    The window is re-read every pass: what this runtime saw booked is skipped without a
    query (``unbooked_fills`` asks about the rest with one query, not one each).
    """
    since = sync_window_start_ms(rt, now)
    fills: list[dict[str, Any]] = []
    for symbol in rt.settings.symbols:
        fills.extend(rt.call(rt.venue.fetch_my_trades, symbol, since))
    window = {str(f["id"]) for f in fills}
    known = rt.store.booked_in(window)
    return window, [Fill.from_venue(f, client_id_of(f)) for f in fills
                    if str(f["id"]) not in known]


def unbooked_fills(rt: Runtime, db, window: set[str], fresh: list[Fill]) -> list[Fill]:
    """Of ``fetch_window``'s fresh fills, those no trade row books yet, oldest first."""
    known = rt.store.unbooked_in(db, rt.venue_key, window)
    fresh = [f for f in fresh if f.trade_id not in known]
    fresh.sort(key=lambda f: (f.timestamp_ms or 0, f.trade_id))  # booked oldest first
    return fresh


def owning_order(rt: Runtime, db, fill: Fill) -> tuple[Order, TradePlan | None] | None:
    """The run's journal order a fill belongs to and that order's plan, or None for a
    foreign fill: another bot's on a shared account (its prefix, or an order of its
    sessions), or no bot's."""
    cid = fill.client_order_id
    if cid and not rt.owns(cid):
        return None
    if cid:
        found = with_plan_by_client_id(db, cid, rt.session_id)
        if found is not None:
            return found
    # Some exchanges leave the client id off a fill: its venue order id names the order.
    order = by_venue_id(db, fill.order_id, rt.session_id) if fill.order_id else None
    if order is None:
        return None
    return order, db.get(TradePlan, order.plan_id) if order.plan_id else None


def book_fill(rt: Runtime, db, fill: Fill, now: datetime) -> bool:
    """Book one venue fill of ours the window check found unbooked: its trade row, its
    stats, its plan and the position snapshot it leaves, in one transaction. False for a
    foreign fill, or one an earlier run booked."""
    trade_id = fill.trade_id  # not booked: book_new_fills checked the window just before
    owner = owning_order(rt, db, fill)
    if owner is None:
        rt.skipped_foreign_fills += 1
        return False
    order, plan = owner
    symbol, quantity, price = fill.symbol, fill.held_change(), fill.price
    trial = copy.copy(rt.book.holdings.get(symbol)) or Holding()
    realized = trial.apply(fill.side, quantity, price)
    timestamp = fill.time(now)
    fee = fee_in_quote(rt, fill)
    try:
        record_trade(
            db, now, session_id=_session_of(rt, db, timestamp), timestamp=timestamp,
            symbol=symbol, action=fill.side, quantity=quantity, price=price,
            fee=fee, liquidity=fill.liquidity,
            realized_pnl=realized,
            reason=order.reason or (plan.reason if plan else None), venue=rt.venue_key,
            trade_id=trade_id, order_id=fill.order_id or order.order_id or "",
            client_order_id=order.client_order_id, plan_id=order.plan_id,
            trace_id=order.trace_id,
        )
    except IntegrityError:
        db.rollback()
        log.info("fill %s was booked by an earlier run; skipped", trade_id)
        rt.store.booked(trade_id)
        return False
    if plan is not None:
        _plan_after_fill(db, plan, order, quantity, price, now)
    # The position snapshot as of this fill commits with it: one transaction, not two.
    positions = write_positions(rt, db, now, book=rt.book.with_holding(symbol, trial))
    db.commit()
    rt.store.booked(trade_id)
    positions_written(rt, positions, now)
    rt.book.holdings[symbol] = trial
    rt.events.fill_booked(fill, realized, fee, order.purpose, plan, closed_by=lambda: plan_fills(
        db, order.plan_id or 0, fill.side))
    return True


def _session_of(rt: Runtime, db, when: datetime) -> int:
    """The session of the day ``when`` falls in (SESSION_TIMEZONE): a fill the sync sees only
    after the rollover still belongs to the day it happened. A day the run has no session
    for (nothing ran then) books into the current one."""
    day = trading_day(when, rt.settings.session_timezone)
    if day == rt.session_day:
        return rt.session_id
    found = find_session(db, rt.kind, rt.run_name, day)
    return found.id if found is not None else rt.session_id


def _plan_after_fill(db, plan: TradePlan, order: Order, quantity: float, price: float,
                     now: datetime) -> None:
    """Entry fills add to what the plan holds, and its entry becomes their average price
    (a limit fills at the market, below its price, when it is marketable); exit fills take
    from it."""
    if order.purpose == OrderPurpose.ENTRY:
        held = plan.filled_size + quantity
        paid = plan.entry_price * plan.filled_size + price * quantity
        revise_plan(db, plan, "entry filled", now, filled_size=held,
                    entry_price=paid / held if held > 0 else plan.entry_price,
                    status=PlanStatus.OPEN if plan.status == PlanStatus.PENDING else plan.status)
        return
    remaining = max(0.0, plan.filled_size - quantity)
    # a stop resting on the venue exits a plan the bot did not mark closing: its reason
    reason = plan.exit_reason or (order.reason if order.purpose == OrderPurpose.STOP else None)
    if remaining <= DUST * max(1.0, plan.size):
        revise_plan(db, plan, f"exit filled: {reason or 'exit'}", now,
                    filled_size=0.0, status=PlanStatus.CLOSED, closed_at=now, exit_reason=reason)
    elif _may_still_sell(db, order) or any(_may_still_sell(db, sell)
                                           for sell in exits_of_plan(db, plan.id)):
        # The plan keeps exiting through the orders it has, else plan enforcement would
        # send another for coins one of them is selling or sold (the exit, or a part's
        # sell the exit took off the venue). Once they are done with a rest unsold, the
        # plan step re-arms a closing plan (``_check_exit``).
        revise_plan(db, plan, "partial exit; the rest of its order still working", now,
                    filled_size=remaining)
    else:
        # A partial exit whose order is done re-arms the stop and target for what remains.
        revise_plan(db, plan, "partial exit; re-armed for the rest", now,
                    filled_size=remaining, size=remaining, status=PlanStatus.OPEN,
                    exit_client_order_id=None)


def _may_still_sell(db, order: Order) -> bool:
    """Whether an exit order may have sold more than its booked fills: it still works on the
    venue, or it is done with fills not shown yet (a venue fills an order in several trades
    and may show them one by one, after the order itself). A closed order whose rest the
    venue dropped looks the same until ``_check_exit``'s grace has passed."""
    if order.status in LIVE_ORDER:
        return True
    return (order.status == OrderStatus.CLOSED
            and booked_quantity(db, order.client_order_id) + DUST < order.amount)


def entry_of(db, plan: TradePlan) -> Order | None:
    """The plan's entry order; looked up only where a branch needs it (not for every plan
    holding its position at every iteration)."""
    return by_client_id(db, plan.entry_client_order_id) if plan.entry_client_order_id else None


def plan_holding(rt: Runtime, plan: TradePlan) -> float:
    """What the plan can really exit: its fills, capped by what the book holds."""
    held = abs(rt.book.quantity(plan.symbol))
    return max(0.0, min(plan.filled_size, held))


def _lift_part_sells(rt: Runtime, db, plan: TradePlan) -> float:
    """Take off the venue the plan's other sells still working (an engine's sell of a part,
    ``bot.actions``); what the plan's sells sold that no booked fill shows yet. The plan's
    exit sells the rest only: those orders hold coins the exit would be refused for, or
    would sell a second time. A sell already cancelled (a close-all cancels every order
    first) is asked too: it may have sold before it was; so is the plan's resting stop,
    which the exit cancels first and which may be gone because it sold the plan."""
    unseen = 0.0
    for order in exits_of_plan(db, plan.id, stops=True):
        booked = booked_quantity(db, order.client_order_id)
        if booked + DUST >= order.amount:
            continue
        if order.order_id is None and order.status in LIVE_ORDER:
            order.order_id = venue_id_of(rt, order)
            if order.order_id is None:  # not open on the venue: it may have sold it all
                mark(order, rt.now(), status=OrderStatus.CLOSED)
                unseen += order.amount - booked
                continue
        if order.order_id is None and not learn_given_up(rt, order):
            continue  # it never reached the venue
        if order.status in LIVE_ORDER:
            cancel_order(rt, db, order)
        try:
            sold = float(rt.call(rt.venue.fetch_order, order.order_id, order.symbol)
                         .get("filled") or 0.0)
        except OrderNotFound:
            continue  # a venue that no longer shows it shows its fills to the sync
        if sold - booked > DUST:  # done having sold, like an order whose fills show late
            mark(order, rt.now(), status=OrderStatus.CLOSED)
            unseen += sold - booked
    return unseen


class StopHit(NamedTuple):
    """A plan's stop seen hit: its level, and the open (ms) of the earliest candle whose
    range the check read (None: it read the price of now alone)."""

    stop: float
    seen_since_ms: int | None


def free_base(rt: Runtime, symbol: str) -> float:
    """What the venue says is free of ``symbol``'s base currency: never sell more."""
    free = rt.call(rt.venue.fetch_balance).get("free") or {}
    return float(free.get(symbol.split("/")[0]) or 0.0)


def exit_plan(rt: Runtime, db, plan: TradePlan, reason: str, now: datetime,
              trace_id: int | None = None, stop: StopHit | None = None) -> Placement | None:
    """Cancel what is left of the entry, then sell what the plan holds at market.

    ``stop``: the plan's stop, hit since the last check. On the paper venue the exit then
    goes as a stop order at it, which the venue judges against what traded over the span
    the check read (``HIT_SEEN_SINCE``), so it fills as the candle that traded through it
    gave (at the stop, or at the open of a candle that gapped through), not at the later
    price the loop sees the hit at. A real exchange sells at its market: the stop is the
    bot's own, and a stop order placed there would rest instead of selling. Targets and
    every other exit sell at the market too (never better than it gives): a target seen
    late sells at the price of when it is seen, as the bot watching it would. What the venue
    refuses as below its minimum order can never be sold: the plan is closed saying so.

    On an exchange the exit sells no more than the account holds free: it may hold less
    than our fills say (coins moved out, a fee its trades do not show), and a sell of more
    is refused at every try, so the stop would never sell. The paper account holds exactly
    what its fills say.
    """
    entry = entry_of(db, plan)
    if entry is not None and entry.status == OrderStatus.OPEN:
        cancel_order(rt, db, entry)
    cancel_resting(rt, db, plan)  # it holds the coins this exit sells
    held = plan_holding(rt, plan) - _lift_part_sells(rt, db, plan)
    if held > DUST and not rt.venue.is_paper:
        held = min(held, free_base(rt, plan.symbol))
    if held <= DUST:
        revise_plan(db, plan, f"closed: {reason} (nothing held)", now, decided_by=trace_id,
                    status=PlanStatus.CLOSED, exit_reason=reason, closed_at=now)
        db.commit()
        rt.events.plan_closed(plan, reason)
        return None
    # The plan's closing state, its exit id and the exit's journal row commit together, so
    # a crash before the send leaves an order for resume_unsent_orders, not a lost exit.
    cid = next_client_order_id(rt, db)
    revise_plan(db, plan, f"exit: {reason}", now, decided_by=trace_id,
                status=PlanStatus.CLOSING, exit_reason=reason)
    plan.exit_client_order_id = cid
    as_stop = stop if rt.venue.is_paper else None
    order = journal_new_order(
        rt, db, symbol=plan.symbol, side=closing_side(plan.side), amount=held,
        purpose=OrderPurpose.EXIT, reason=reason,
        order_type=OrderType.MARKET if as_stop is None else OrderType.STOP,
        price=None if as_stop is None else as_stop.stop, plan_id=plan.id,
        trace_id=trace_id or plan.trace_id, client_order_id=cid, looked_up=True,
        seen_since_ms=None if as_stop is None else as_stop.seen_since_ms,
    )
    placement = send_journaled(rt, db, order, commit=False)  # committed with the plan below
    if placement.ok or placement.below_minimum:
        rt.owed_exits.pop(plan.id, None)
    if placement.below_minimum:
        # no order can sell it, now or at a retry: the plan ends, the dust stays held
        why = (f"{reason}; {figure(held)} {plan.symbol.split('/')[0]} left, below the "
               "exchange's minimum order")
        exits_log.warning("plan %d closed: %s", plan.id, why)
        revise_plan(db, plan, f"closed: {why}", now, decided_by=trace_id,
                    status=PlanStatus.CLOSED, exit_reason=why, closed_at=now)
        db.commit()
        rt.events.plan_closed(plan, why)
        return placement
    if not placement.ok:
        exits_log.error("exit of plan %d failed: %s; will retry next iteration", plan.id, placement.error)
        revise_plan(db, plan, f"exit failed: {placement.error}", now, decided_by=trace_id,
                    status=PlanStatus.OPEN)
        if placement.status == OrderStatus.FAILED:
            # the venue's faults outlasted the attempts: the exit is sent again at the next
            # iteration whatever the price does meanwhile (a refused one, when called for)
            rt.owed_exits[plan.id] = reason
    db.commit()
    return placement
