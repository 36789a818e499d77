"""Sending orders: journal first, bounded attempts, the same client order id every time.

The journal row is committed before the venue call, so whatever happens next (a timeout, a
crash) the retry reuses the client order id and the venue answers "already placed" instead
of filling twice. Every outcome is a ``Placement``; nothing returns None for a failure.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.fleet import client_id_of
from bot.model.vocabulary import OrderPurpose, OrderStatus, OrderType
from bot.runtime import Runtime
from bot.venue.base import (
    HIT_SEEN_SINCE,
    BelowMinimum,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    TransientVenueError,
    VenueError,
    journal_status,
)
from db.models import Order
from db.orders import by_client_id, by_venue_id, journal_order, mark

log = logging.getLogger("tradedesk.execution")
# Entries older than this (or three loop intervals) are not sent at a restart: exits are.
STALE_ENTRY_SECONDS = 60.0


@dataclass
class Placement:
    ok: bool
    client_order_id: str
    order_id: str | None = None
    status: str = OrderStatus.NEW
    filled: float = 0.0
    error: str | None = None
    # refused as smaller than the market's minimum (``BelowMinimum``): no retry can send it
    below_minimum: bool = False

    def as_dict(self) -> dict[str, object]:
        """For the trace: the venue's order status is ``order_status``, not the outcome (the
        error says why an order was refused)."""
        fields = {k: v for k, v in self.__dict__.items()
                  if v not in (None, "") and k not in ("ok", "below_minimum")}
        fields["order_status"] = fields.pop("status")
        return fields


def _run_code(rt: Runtime) -> str:
    return "l" if rt.kind == "live" else "r" + hashlib.sha1(rt.run_name.encode()).hexdigest()[:4]


def next_client_order_id(rt: Runtime, db) -> str:
    """Prefix, run code and a counter: unique per run, short enough for every venue.

    The counter is the journal's row count plus one (``Store.next_order_number``). A number
    is used only by a committed row, never above the row count, so the count read after a
    restart continues past all of them.
    """
    return f"{rt.prefix}{_run_code(rt)}{rt.store.next_order_number(db):06d}"


def decision_client_order_id(rt: Runtime, trace_id: int, index: int) -> str:
    """The id of a decision's ``index``-th action: the same however often it is executed.

    A crash between a decision's trace and its execution result makes the restarted loop
    execute the recorded decision again; the fixed id turns a second placement into the
    venue's DuplicateOrder instead of a second entry. The letters keep it apart from the
    all-digit counter ids.
    """
    return f"{rt.prefix}{_run_code(rt)}d{trace_id}x{index}"


def place_order(
    rt: Runtime, db, *, symbol: str, side: str, amount: float, purpose: str, reason: str,
    order_type: str = OrderType.MARKET, price: float | None = None, plan_id: int | None = None,
    trace_id: int | None = None, client_order_id: str | None = None,
) -> Placement:
    """Journal the order (committed) and send it; see ``journal_new_order`` for reuse."""
    order = journal_new_order(
        rt, db, symbol=symbol, side=side, amount=amount, purpose=purpose, reason=reason,
        order_type=order_type, price=price, plan_id=plan_id, trace_id=trace_id,
        client_order_id=client_order_id,
    )
    return send_or_report(rt, db, order)


def journal_new_order(
    rt: Runtime, db, *, symbol: str, side: str, amount: float, purpose: str, reason: str,
    order_type: str = OrderType.MARKET, price: float | None = None, plan_id: int | None = None,
    trace_id: int | None = None, client_order_id: str | None = None,
    looked_up: bool = False, seen_since_ms: int | None = None,
) -> Order:
    """Write the journal row (and whatever else is pending in ``db``) in one commit.

    Callers that must link the order to another row (a plan's entry id) add that change to
    ``db`` first, so a crash can never leave one without the other. A deterministic
    ``client_order_id`` already in the journal returns that row instead of a second order:
    a redone iteration then re-sends the same id and the venue answers DuplicateOrder.
    ``looked_up``: the caller, in this transaction, just found ``client_order_id`` absent,
    or made it with ``next_client_order_id`` (a new id by construction). ``seen_since_ms``:
    a paper stop exit's span (``HIT_SEEN_SINCE``), sent with it whenever it is sent.
    """
    now = rt.now()
    cid = client_order_id or next_client_order_id(rt, db)
    existing = None if looked_up or client_order_id is None else by_client_id(db, cid)
    if existing is not None:
        return existing
    order = journal_order(
        db, session_id=rt.session_id, client_order_id=cid, symbol=symbol, side=side.upper(),
        type=order_type, amount=amount, price=price, purpose=purpose, status=OrderStatus.NEW,
        reason=reason, plan_id=plan_id, trace_id=trace_id, seen_since_ms=seen_since_ms,
        created_at=now, updated_at=now,
    )
    return order


def send_or_report(rt: Runtime, db, order: Order, *, maybe_sent: bool = False) -> Placement:
    """Send an order still ``new``; one already sent reports its journaled state.
    ``maybe_sent``: journaled by an iteration a crash cut short (``send_journaled``)."""
    if order.status == OrderStatus.NEW:
        return send_journaled(rt, db, order, maybe_sent=maybe_sent)
    ok = order.status not in (OrderStatus.REJECTED, OrderStatus.FAILED)
    return Placement(ok, order.client_order_id, order.order_id, order.status, 0.0,
                     None if ok else order.error)


def resume_unsent_orders(rt: Runtime) -> int:
    """Re-send journal orders left ``new`` (journaled, maybe never sent): by a crash, found
    at the start, or by a commit of the send's outcome that failed (the database locked or
    down), found at the next resync; the venue may have been down too, so nothing went out.

    They go out with their own client order id, so an order the venue did receive answers
    DuplicateOrder and is marked open (resync and fill sync settle it); one it never
    received is placed now. An entry too old to be today's decision is marked failed instead.
    Returns how many unsent orders were found.
    """
    if not rt.store.orders_may_be_live:  # the usual iteration: no session needed
        return 0
    now = rt.now()
    too_old = timedelta(seconds=max(STALE_ENTRY_SECONDS, 3 * rt.settings.loop_interval_seconds))
    with rt.db() as db:
        unsent = [o for o in rt.store.live_orders(db, rt.session_id)
                  if o.status == OrderStatus.NEW]
        for order in unsent:
            if order.purpose == OrderPurpose.ENTRY and now - order.created_at > too_old:
                # An entry decided long ago is not the decision of now; if the venue did get
                # it, resync adopts it as open and fill sync books its fills by client id.
                mark(order, now, status=OrderStatus.FAILED,
                     error="left unsent by a crash and too old to send at restart")
                db.commit()
                continue
            log.warning("re-sending journal order %s left unsent by a crash",
                        order.client_order_id)
            placement = send_journaled(rt, db, order, maybe_sent=True)
            if not placement.ok:
                log.error("re-send of %s failed: %s", order.client_order_id, placement.error)
        return len(unsent)


def send_journaled(rt: Runtime, db, order: Order, *, commit: bool = True,
                   maybe_sent: bool = False) -> Placement:
    """Send (or re-send) a journaled order with its own client order id.

    What the venue answered is marked on the order and committed; ``commit=False`` leaves
    it to the caller's commit right after (one commit, not two). A crash before that commit
    leaves the order ``new``: ``resume_unsent_orders`` re-sends it (``maybe_sent``: the
    venue is asked for it by its client id first, see ``_send``). A paper stop exit goes with
    the span it is judged over (``HIT_SEEN_SINCE``), kept on its row for a resend too.
    """
    params: dict[str, object] = (
        {} if order.seen_since_ms is None else {HIT_SEEN_SINCE: order.seen_since_ms})
    placement = _send(rt, db, order, params, maybe_sent)
    if commit:
        db.commit()
    return placement


def _send(rt: Runtime, db, order: Order, params: dict[str, object],
          maybe_sent: bool) -> Placement:
    """The attempts of ``send_journaled``; the outcome is marked, uncommitted.

    An attempt after one whose answer never came, and the first of an order that
    ``maybe_sent`` already, asks the venue for the order by its client id before sending it:
    a venue that refuses a client id only while its order is open (binance) takes it again
    once that order has filled, and a market order sent again would be bought twice.
    """
    attempts = rt.settings.order_max_attempts
    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            placed = _taken_already(rt, order) if attempt > 1 or maybe_sent else None
            if placed is None:
                order.attempts += 1
                placed = rt.call(
                    rt.venue.create_order, order.symbol, order.type, order.side.lower(),
                    order.amount, order.price,
                    {**params, "clientOrderId": order.client_order_id},
                )
        except DuplicateOrder:
            mark(order, rt.now(), status=OrderStatus.OPEN,
                 error="already placed (duplicate client id)")
            return Placement(True, order.client_order_id, order.order_id, OrderStatus.OPEN)
        except TransientVenueError as exc:
            last_error = f"{type(exc).__name__}: {rt.words(exc)}"
            log.warning("attempt %d/%d for %s failed: %s", attempt, attempts,
                        order.client_order_id, last_error)
            if not rt.venue.is_paper:
                time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
            continue
        except (OrderRejected, VenueError) as exc:
            mark(order, rt.now(), status=OrderStatus.REJECTED, error=rt.words(exc))
            return Placement(False, order.client_order_id, status=OrderStatus.REJECTED,
                             error=rt.words(exc), below_minimum=isinstance(exc, BelowMinimum))
        status = journal_status(placed)
        mark(order, rt.now(), order_id=str(placed["id"]), status=status, error=None)
        return Placement(True, order.client_order_id, str(placed["id"]), status,
                         float(placed.get("filled") or 0.0))
    mark(order, rt.now(), status=OrderStatus.FAILED,
         error=f"gave up after {attempts} attempts: {last_error}")
    return Placement(False, order.client_order_id, status=OrderStatus.FAILED,
                     error=f"gave up after {attempts} attempts: {last_error}")


def _taken_already(rt: Runtime, order: Order) -> dict[str, Any] | None:
    """The venue's order with ``order``'s client id, when a send whose answer never came
    reached it; None when it has no such order or cannot look one up by client id (it
    refuses the request). A fault of the lookup is the attempt's: nothing is sent blind."""
    try:
        return rt.call(rt.venue.fetch_order_by_client_id, order.client_order_id, order.symbol)
    except TransientVenueError:
        raise
    except VenueError:  # OrderNotFound, or OrderRejected: no lookup by client id there
        return None


def own_order(rt: Runtime, db, order_id: str) -> Order | None:
    """The run's journal order with this venue id, if it carries our prefix; None for any
    other, such as another bot's order on a shared account: never ours to cancel."""
    order = by_venue_id(db, order_id, rt.session_id)
    return order if order is not None and rt.owns(order.client_order_id) else None


CANCELED, GONE = "canceled", "already gone"  # what ``cancel_order`` found


def venue_id_of(rt: Runtime, order: Order) -> str | None:
    """The venue's id of a journal order sent without learning it (a retry answered as a
    duplicate, a send that timed out), found by its client id among the venue's open
    orders."""
    for listed in rt.call(rt.venue.fetch_open_orders, order.symbol):
        if client_id_of(listed) == order.client_order_id:
            return str(listed["id"])
    return None


def learn_given_up(rt: Runtime, order: Order) -> bool:
    """Whether a send given up after timeouts (failed, its venue id never learnt) reached
    the venue after all, open or already done: found by its client id, it is marked with
    the venue's id and status (uncommitted), so what it sold is asked and counted as any
    order sent. One not found never reached the venue, or the venue cannot look an order up
    by client id (it refuses the request): it is left as it is."""
    if order.status != OrderStatus.FAILED or order.order_id is not None:
        return False
    found = _taken_already(rt, order)
    if found is None:
        return False
    status = OrderStatus.OPEN if found.get("status") == "open" else OrderStatus.CLOSED
    mark(order, rt.now(), order_id=str(found["id"]), status=status, error=None)
    return True


def found_taken(rt: Runtime, order: Order) -> bool:
    """Whether a send given up after timeouts (failed, its venue id never learnt) was taken
    by the venue after all: found open there by its client id, it is marked open with that
    id (uncommitted), to be counted and cancelled as any order sent. One not found open
    never reached the venue, or filled: the fill sync books its fills by client id."""
    if order.status != OrderStatus.FAILED or order.order_id is not None:
        return False
    venue_id = venue_id_of(rt, order)
    if venue_id is None:
        return False
    mark(order, rt.now(), order_id=venue_id, status=OrderStatus.OPEN, error=None)
    return True


def withdraw_unsent(rt: Runtime, db, order: Order, why: str) -> str:
    """Take back a journal order left ``new`` (its send's outcome never recorded), which
    ``resume_unsent_orders`` would send at the next iteration: cancelled on the venue when
    it took the order after all, else marked cancelled so it is never sent."""
    order.order_id = venue_id_of(rt, order)
    if order.order_id is not None:
        return cancel_order(rt, db, order)
    mark(order, rt.now(), status=OrderStatus.CANCELED, error=f"never sent: withdrawn by {why}")
    db.commit()
    return CANCELED


def cancel_order(rt: Runtime, db, order: Order) -> str:
    """Cancel one of our orders; an order the venue no longer knows counts as gone (it may
    have filled first: ``GONE``). One the venue's answer says filled in part is journaled
    closed, as ``journal_status`` has it: done with fills the venue may show only later."""
    status = OrderStatus.CANCELED
    try:
        answer = rt.call(rt.venue.cancel_order, order.order_id, order.symbol)
        outcome = CANCELED
        if float(answer.get("filled") or 0.0) > 0:
            status = OrderStatus.CLOSED
    except OrderNotFound:
        outcome = GONE
    mark(order, rt.now(), status=status)
    db.commit()
    return outcome
