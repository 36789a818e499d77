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

from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.venue.base import (
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    TransientVenueError,
    VenueError,
)
from db.models import Order
from db.orders import journal_order, mark

log = logging.getLogger("tradedesk.execution")


@dataclass
class Placement:
    ok: bool
    client_order_id: str
    order_id: str | None = None
    status: str = "new"
    filled: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        """For the trace: the venue's order status is ``order_status``, not the outcome."""
        fields = {k: v for k, v in self.__dict__.items() if v not in (None, "") and k != "ok"}
        fields["order_status"] = fields.pop("status")
        return fields


def next_client_order_id(rt: Runtime, db) -> str:
    """Prefix, run code and a counter: unique per run, short enough for every venue."""
    count = db.scalar(select(func.count(Order.id))) or 0
    run = "l" if rt.kind == "live" else "r" + hashlib.sha1(rt.run_name.encode()).hexdigest()[:4]
    return f"{rt.prefix}{run}{count + 1:06d}"


def place_order(
    rt: Runtime, db, *, symbol: str, side: str, amount: float, purpose: str, reason: str,
    order_type: str = "market", price: float | None = None, plan_id: int | None = None,
    trace_id: int | None = None,
) -> Placement:
    now = rt.now()
    cid = next_client_order_id(rt, db)
    order = journal_order(
        db, session_id=rt.session_id, client_order_id=cid, symbol=symbol, side=side.upper(),
        type=order_type, amount=amount, price=price, purpose=purpose, status="new",
        reason=reason, plan_id=plan_id, trace_id=trace_id, created_at=now, updated_at=now,
    )
    return send_journaled(rt, db, order)


def send_journaled(rt: Runtime, db, order: Order) -> Placement:
    """Send (or re-send) a journaled order with its own client order id."""
    attempts = rt.settings.order_max_attempts
    last_error = ""
    for attempt in range(1, attempts + 1):
        order.attempts += 1
        try:
            placed = rt.call(
                rt.venue.create_order, order.symbol, order.type, order.side.lower(),
                order.amount, order.price, {"clientOrderId": order.client_order_id},
            )
        except DuplicateOrder:
            mark(db, order, rt.now(), status="open", error="already placed (duplicate client id)")
            return Placement(True, order.client_order_id, order.order_id, "open")
        except TransientVenueError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            log.warning("attempt %d/%d for %s failed: %s", attempt, attempts,
                        order.client_order_id, last_error)
            if not rt.venue.is_paper:
                time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
            continue
        except (OrderRejected, VenueError) as exc:
            mark(db, order, rt.now(), status="rejected", error=str(exc))
            return Placement(False, order.client_order_id, status="rejected", error=str(exc))
        status = "closed" if placed.get("status") == "closed" else "open"
        if placed.get("status") in ("canceled", "rejected", "expired"):
            status = "canceled"
        mark(db, order, rt.now(), order_id=str(placed["id"]), status=status, error=None)
        return Placement(True, order.client_order_id, str(placed["id"]), status,
                         float(placed.get("filled") or 0.0))
    mark(db, order, rt.now(), status="failed", error=f"gave up after {attempts} attempts: {last_error}")
    return Placement(False, order.client_order_id, status="failed",
                     error=f"gave up after {attempts} attempts: {last_error}")


def cancel_order(rt: Runtime, db, order: Order) -> str:
    """Cancel one of our orders; an order the venue no longer knows counts as gone."""
    try:
        rt.call(rt.venue.cancel_order, order.order_id, order.symbol)
        outcome = "canceled"
    except OrderNotFound:
        outcome = "already gone"
    mark(db, order, rt.now(), status="canceled")
    return outcome
