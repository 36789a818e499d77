"""Replace the open-order and position snapshots with what is ours on the venue: the resync
step, and the operator's close once it has flattened.

Ours means the client order id carries our prefix. Disagreements between the venue and our
order journal are logged and reconciled, never dropped: an order of ours the journal does
not know is adopted into it; a journal order the venue no longer lists is marked done so the
fill sync accounts for what it filled.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.fleet import client_id_of
from bot.model.vocabulary import OrderPurpose, OrderStatus
from bot.position_snapshot import positions_due, positions_written, write_positions
from bot.runtime import Runtime
from db.engine import bound_engine
from db.orders import by_client_id, journal_order
from db.snapshots import replace_open_orders

log = logging.getLogger("tradedesk.resync")


def is_ours(rt: Runtime, order: dict[str, Any]) -> bool:
    return rt.owns(client_id_of(order))


def _when(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def reconcile_with_venue(rt: Runtime) -> None:
    now = rt.now()
    # One row per order id: venues can list an order twice (overlapping pages), and the
    # snapshot's unique key would otherwise fail the whole step.
    venue_orders = list({str(o["id"]): o for o in rt.call(rt.venue.fetch_open_orders)
                         if is_ours(rt, o)}.values())
    rows = [
        {"order_id": str(order["id"]), "client_order_id": client_id_of(order),
         "symbol": order["symbol"], "side": order["side"].upper(),
         "type": order.get("type") or "limit", "price": order.get("price"),
         "amount": float(order["amount"]), "remaining": float(order.get("remaining") or 0.0),
         "status": order.get("status") or OrderStatus.OPEN,
         "exchange_timestamp": _when(order.get("timestamp"))}
        for order in venue_orders]
    if not venue_orders and (rt.session_id, rows) == rt.store.open_orders and (
            not rt.store.may_have_live_orders(rt.session_id)):
        # The usual iteration: none of ours is open on the venue or live in the journal, so
        # there is nothing to reconcile and the order snapshot stands. The positions were
        # written as of now by the market-data step's transaction (``positions_due``), so
        # usually no transaction is needed; else one statement on a Core connection.
        if positions_due(rt, now):
            with bound_engine(rt.db).begin() as conn:
                positions = write_positions(rt, conn, now)
            positions_written(rt, positions, now)
        return
    with rt.db() as db:
        _reconcile_journal(rt, db, venue_orders, now)
        open_orders = write_open_orders(rt, db, rows)
        positions = write_positions(rt, db, now)
        db.commit()
    rt.store.open_orders_written(open_orders)
    positions_written(rt, positions, now)


def write_open_orders(
    rt: Runtime, db, rows: list[dict[str, Any]]
) -> tuple[int, list[dict[str, Any]]]:
    """Replace the session's open-order snapshot with ``rows``, unless it already is that.

    Returns what the store keeps once the caller's transaction commits.
    """
    snapshot = (rt.session_id, rows)
    if snapshot != rt.store.open_orders:
        replace_open_orders(db, rt.session_id, rows)
    return snapshot


def _reconcile_journal(rt: Runtime, db, venue_orders: list[dict[str, Any]], now: datetime) -> None:
    listed = {str(o["id"]) for o in venue_orders}
    ids = rt.session_ids(db)
    for order in venue_orders:
        cid = client_id_of(order) or ""  # is_ours: every one has our prefix
        known = by_client_id(db, cid)
        if known is not None and known.session_id not in ids:
            # Another run's order under our prefix (two bots set to one CLIENT_ORDER_PREFIX):
            # not ours to adopt or to mark.
            log.warning("order %s (%s) carries our prefix but belongs to another run; left "
                        "alone", order["id"], cid)
            continue
        if known is None:
            log.warning("adopting order %s (%s) found on the venue but not in our journal",
                        order["id"], cid)
            journal_order(
                db, session_id=rt.session_id, client_order_id=cid, order_id=str(order["id"]),
                symbol=order["symbol"], side=order["side"].upper(),
                type=order.get("type") or "limit", amount=float(order["amount"]),
                price=order.get("price"), purpose=OrderPurpose.ADOPTED, status=OrderStatus.OPEN,
                reason="adopted at resync: on the venue but not in the journal",
                created_at=now, updated_at=now,
            )
        elif known.order_id is None or known.status != OrderStatus.OPEN:
            known.order_id, known.status, known.updated_at = (str(order["id"]), OrderStatus.OPEN,
                                                              now)
    # none read while none of ours is live in the journal: nothing the venue stopped listing
    for known in rt.store.live_orders(db, rt.session_id):
        if known.status == OrderStatus.OPEN and known.order_id not in listed:
            log.info("order %s is no longer open on the venue; its fills settle it", known.order_id)
            known.status, known.updated_at = OrderStatus.CLOSED, now
