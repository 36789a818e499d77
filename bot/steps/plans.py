"""Step 4: enforce every open plan, whatever else this iteration skipped.

Stops, targets, trailing and expiry are checked on every iteration, paused or not, breaker
open or not: a stop that waits for good weather is not a stop. Exits are sized from what the
plan actually holds (never its intended size), and an entry that never filled is cancelled
instead of being "exited".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.booking import StopHit, book_new_fills, entry_of, exit_plan, plan_holding
from bot.execution import cancel_order
from bot.guard import stop_reason
from bot.model.vocabulary import LIVE_ORDER, OrderStatus, PlanStatus, Side
from bot.positions import DUST
from bot.resting_stop import is_current, keep_resting
from bot.runtime import Quote, Runtime
from db.models import Order, TradePlan
from db.orders import OWED_EXIT_REASON, exits_of_plan
from db.plans import revise_plan
from db.trades import booked_quantity

# How long an entry the venue reports done may go without booked fills before its plan is
# written off: venues show fills late, and a plan closed meanwhile leaves the position that
# then arrives without a stop (and frees the symbol for a second entry).
LATE_FILL_GRACE = timedelta(minutes=30)
# an entry in these states fills no more
DEAD_ENTRY = (OrderStatus.REJECTED, OrderStatus.FAILED, OrderStatus.CANCELED, OrderStatus.CLOSED)


def enforce_plans(rt: Runtime) -> None:
    now = rt.now()
    journaled = rt.store.orders_journaled
    read = rt.store.active_plans
    # The plans as last read, when none was written since: if enforcing each would change
    # nothing (the usual iteration), no session is needed to find that out again.
    if read is None or not all(is_quiet(rt, plan, now) for plan in read):
        with rt.db() as db:
            plans = rt.store.read_active_plans(db, rt.session_id)
            failed = False
            for plan in plans:
                try:
                    _enforce(rt, db, plan, now)
                except Exception as exc:
                    db.rollback()  # expires the plans read: the store forgets them
                    failed = True
                    rt.note_error(f"plan {plan.id}", exc)
            db.commit()
            if not failed:  # as enforced and committed: what guards them in an outage
                rt.guard.remember(plans)
    if rt.store.orders_journaled > journaled:
        # Book the exits' fills now, so the engine decides on what is really held rather
        # than on a plan still "closing"; a restart redoing this iteration books them
        # before deciding too, so both decide on the same state.
        book_new_fills(rt)
    for quote in rt.quotes.values():  # the extremes have been checked; start afresh
        quote.low_since_check = quote.high_since_check = quote.last
        quote.extremes_from_ms = None


def is_quiet(rt: Runtime, plan: TradePlan, now: datetime) -> bool:
    """Whether enforcing ``plan`` now would change nothing: it is open and holds its
    position, and neither its trail, its levels nor its age call for anything.

    Built from the predicates ``_enforce`` acts on, so the two cannot disagree.
    """
    if plan.status != PlanStatus.OPEN:
        return False
    quote = rt.quotes.get(plan.symbol)
    if quote is None:
        return True
    held = plan_holding(rt, plan)
    return (held > DUST and _trail_gain(rt, plan, quote.last) is None
            and _exit_reason(rt, plan, quote, now) is None and is_current(rt, plan, held))


def _enforce(rt: Runtime, db, plan: TradePlan, now: datetime) -> None:
    quote = rt.quotes.get(plan.symbol)
    if plan.status == PlanStatus.PENDING:
        _enforce_pending(rt, db, plan, entry_of(db, plan), _expired(rt, plan, now), now)
        return
    if plan.status == PlanStatus.CLOSING:
        _check_exit(rt, db, plan, now)
        return
    if quote is None:
        return
    held = plan_holding(rt, plan)
    if held <= DUST:
        entry = entry_of(db, plan)
        if entry is None or entry.status not in LIVE_ORDER:
            revise_plan(db, plan, "closed: nothing held", now, status=PlanStatus.CLOSED,
                        exit_reason=plan.exit_reason or "nothing held", closed_at=now)
        return
    _maybe_trail(rt, db, plan, quote.last, now)
    found = _exit_reason(rt, plan, quote, now)  # after the trail: it may move the stop
    if found is not None:
        reason, hit = found
        exit_plan(rt, db, plan, reason, now, stop=hit)
    elif rt.settings.stoploss_on_exchange:
        keep_resting(rt, db, plan, held)


def _expired(rt: Runtime, plan: TradePlan, now: datetime) -> bool:
    return now - plan.opened_at > timedelta(minutes=rt.settings.plan_max_age_minutes)


def _exit_reason(rt: Runtime, plan: TradePlan, quote: Quote,
                 now: datetime) -> tuple[str, StopHit | None] | None:
    """Why an open plan must exit now (an exit owed, stop, target, age) and the stop when
    it was hit, or None.

    What the check reads: the price of now, and the range of the candles closed since the
    last check (from ``extremes_from_ms`` on) when they began after the plan opened. A stop
    hit names that span, which the paper venue judges its stop order against.
    """
    owed = rt.owed_exits.get(plan.id)
    if owed is not None:  # its exit failed to be placed: owed, whatever the price did since
        return owed, None
    long = plan.side == Side.BUY
    low, high = quote.last, quote.last
    opened_ms = int(plan.opened_at.timestamp() * 1000)
    since = quote.extremes_from_ms
    if since is not None and opened_ms <= since:
        # Only candles that began after the plan opened can have touched its levels.
        low, high = min(quote.low_since_check, low), max(quote.high_since_check, high)
    else:
        since = None
    if (long and low <= plan.stop_price) or (not long and high >= plan.stop_price):
        return stop_reason(plan.stop_price), StopHit(plan.stop_price, since)
    if (long and high >= plan.target_price) or (not long and low <= plan.target_price):
        return f"target hit at {plan.target_price:g}", None
    if _expired(rt, plan, now):
        return f"plan older than {rt.settings.plan_max_age_minutes} min", None
    return None


def _enforce_pending(rt, db, plan: TradePlan, entry: Order | None, expired: bool, now) -> None:
    quote = rt.quotes.get(plan.symbol)
    stop_passed = quote is not None and (
        quote.last <= plan.stop_price if plan.side == Side.BUY else quote.last >= plan.stop_price
    )
    entry_dead = entry is None or entry.status in DEAD_ENTRY
    if (entry is not None and entry.status == OrderStatus.CLOSED and plan.filled_size <= DUST
            and now - entry.updated_at < LATE_FILL_GRACE):
        return  # done on the venue, fills not booked yet: wait for them (see LATE_FILL_GRACE)
    if entry_dead and plan.filled_size <= DUST:
        revise_plan(db, plan, "closed: entry never filled", now, status=PlanStatus.CLOSED,
                    exit_reason="entry never filled", closed_at=now)
    elif expired or stop_passed:
        if entry is not None and entry.status == OrderStatus.OPEN:
            cancel_order(rt, db, entry)
            if entry.status == OrderStatus.CLOSED and plan.filled_size <= DUST:
                return  # it filled in part first: its fills are awaited as a done entry's
        why = "entry expired" if expired else "stop passed before entry filled"
        if plan.filled_size <= DUST:
            revise_plan(db, plan, f"closed: {why}", now, status=PlanStatus.CLOSED, exit_reason=why,
                        closed_at=now)
        else:
            revise_plan(db, plan, f"entry cancelled: {why}", now, status=PlanStatus.OPEN,
                        size=plan.filled_size)


def _maybe_trail(rt: Runtime, db, plan: TradePlan, price: float, now: datetime) -> None:
    """Move the stop to breakeven once the gain passes TRAIL_BREAKEVEN_PCT."""
    gain = _trail_gain(rt, plan, price)
    if gain is not None:
        better = plan.stop_price < plan.entry_price if plan.side == Side.BUY else (
            plan.stop_price > plan.entry_price)
        if better:
            revise_plan(db, plan, f"trailed stop to breakeven after {gain:.2f}% gain", now,
                        stop_price=plan.entry_price, trail_armed=True)
        else:
            plan.trail_armed = True


def _trail_gain(rt: Runtime, plan: TradePlan, price: float) -> float | None:
    """The gain (%) at ``price`` when it arms the plan's breakeven trail now, else None."""
    pct = rt.settings.trail_breakeven_pct
    if pct <= 0 or plan.trail_armed:
        return None
    gain = (price / plan.entry_price - 1) * 100
    if plan.side != Side.BUY:
        gain = -gain
    return gain if gain >= pct else None


def _check_exit(rt: Runtime, db, plan: TradePlan, now: datetime) -> None:
    """A closing plan whose exit order died is re-armed so the next iteration exits again
    (its exit owed when the venue's faults kept it from being placed).

    An exit the venue reports done but whose fills are not booked yet is waited for (a few
    loop intervals), because re-arming it then would sell the same coins twice.
    """
    sells = exits_of_plan(db, plan.id)  # its exit, and any part's sell it took off the venue
    if any(order.status in LIVE_ORDER for order in sells):
        return
    if plan_holding(rt, plan) <= DUST:
        revise_plan(db, plan, "closed", now, status=PlanStatus.CLOSED, closed_at=now)
        return
    grace = timedelta(seconds=3 * rt.settings.loop_interval_seconds)
    if any(order.status == OrderStatus.CLOSED and now - order.updated_at < grace
           and booked_quantity(db, order.client_order_id) + DUST < order.amount
           for order in sells):
        return
    revise_plan(db, plan, "exit did not complete; re-armed", now, status=PlanStatus.OPEN)
    if any(order.client_order_id == plan.exit_client_order_id
           and order.status == OrderStatus.FAILED for order in sells):
        # its exit's sends gave up to the venue's faults (a resend at a restart): owed, as
        # an exit that fails when first sent is, and as a restart reads it from the journal
        rt.owed_exits[plan.id] = plan.exit_reason or OWED_EXIT_REASON
