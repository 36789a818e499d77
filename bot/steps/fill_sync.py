"""Step 3: book our venue fills into ``trades``, exactly once each.

Window: the whole of the last TRADE_SYNC_CUTOFF_MINUTES on every pass, not just what came
after the last booked fill: venues show some fills late, stamped earlier than fills already
booked, and a window that starts at the newest booked fill never sees them. A fill
is booked once per venue trade id (checked first, against the ids this runtime saw booked
and then in one query for the rest, and guarded by a unique constraint so a crash between
the check and the commit cannot double-book). Each fill's trade row, stats
cache update, plan update and the position snapshot it leaves commit in one transaction.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.positions import Holding
from bot.runtime import Runtime
from bot.steps.resync import client_id_of, positions_written, write_positions
from db.models import Order, TradePlan
from db.orders import by_venue_id, with_plan_by_client_id
from db.plans import revise_plan
from db.trades import booked_trade_ids, record_trade

log = logging.getLogger("tradedesk.fills")
DUST = 1e-9


def sync_window_start_ms(rt: Runtime, now: datetime) -> int:
    cutoff = now - timedelta(minutes=rt.settings.trade_sync_cutoff_minutes)
    return int(cutoff.timestamp() * 1000)


def sync_fills(rt: Runtime) -> int:
    """Book new fills; returns how many were booked."""
    now = rt.now()
    since = sync_window_start_ms(rt, now)
    fills: list[dict[str, Any]] = []
    for symbol in rt.settings.symbols:
        fills.extend(rt.call(rt.venue.fetch_my_trades, symbol, since))
    # The window is re-read every pass: what this runtime saw booked is skipped without a
    # query, the rest with one query, not one each.
    window = {str(f["id"]) for f in fills}
    known = rt.mirror.booked_fills & window
    fresh = [f for f in fills if str(f["id"]) not in known]
    if not fresh:
        rt.mirror.booked_fills = known
        return 0
    fresh.sort(key=lambda f: (f.get("timestamp") or 0, str(f["id"])))  # booked oldest first
    booked = 0
    with rt.db() as db:
        known |= booked_trade_ids(db, rt.venue_key, window - known)
        rt.mirror.booked_fills = known
        for fill in fresh:
            if str(fill["id"]) in known:
                continue
            if _book_fill(rt, db, fill, now):
                booked += 1
    return booked


def _owning_order(rt: Runtime, db, fill: dict[str, Any]) -> tuple[Order, TradePlan | None] | None:
    """The run's journal order a fill belongs to and that order's plan, or None for a
    foreign fill: another bot's on a shared account (its prefix, or an order of its
    sessions), or no bot's."""
    cid = client_id_of(fill)
    if cid and not rt.owns(cid):
        return None
    ids = rt.session_ids(db)
    if cid:
        found = with_plan_by_client_id(db, cid, ids)
        if found is not None:
            return found
    # Some exchanges leave the client id off a fill: its venue order id names the order.
    order = by_venue_id(db, str(fill["order"]), ids) if fill.get("order") else None
    if order is None:
        return None
    return order, db.get(TradePlan, order.plan_id) if order.plan_id else None


def fee_in_quote(fill: dict[str, Any], symbol: str) -> float:
    fee = fill.get("fee") or {}
    cost = float(fee.get("cost") or 0.0)
    base, quote = symbol.split("/")
    currency = fee.get("currency")
    if currency and currency == base:
        return cost * float(fill["price"])
    return cost


def _book_fill(rt: Runtime, db, fill: dict[str, Any], now: datetime) -> bool:
    trade_id = str(fill["id"])  # not booked: sync_fills checked the window just before
    owner = _owning_order(rt, db, fill)
    if owner is None:
        rt.skipped_foreign_fills += 1
        return False
    order, plan = owner
    symbol, side = fill["symbol"], fill["side"].upper()
    quantity, price = float(fill["amount"]), float(fill["price"])
    trial = copy.copy(rt.book.holdings.get(symbol)) or Holding()
    realized = trial.apply(side, quantity, price)
    timestamp = datetime.fromtimestamp(fill["timestamp"] / 1000, UTC) if fill.get("timestamp") else now
    try:
        record_trade(
            db, now, session_id=rt.session_id, timestamp=timestamp, symbol=symbol, action=side,
            quantity=quantity, price=price, fee=fee_in_quote(fill, symbol),
            liquidity=fill.get("takerOrMaker"), realized_pnl=realized,
            reason=order.reason or (plan.reason if plan else None), venue=rt.venue_key,
            trade_id=trade_id, order_id=str(fill.get("order") or order.order_id or ""),
            client_order_id=order.client_order_id, plan_id=order.plan_id,
            trace_id=order.trace_id,
        )
    except IntegrityError:
        db.rollback()
        log.info("fill %s was booked by an earlier run; skipped", trade_id)
        rt.mirror.booked_fills.add(trade_id)
        return False
    if plan is not None:
        _update_plan(db, plan, order, quantity, now)
    # The position snapshot as of this fill commits with it: one transaction, not two.
    positions = write_positions(rt, db, now, book=rt.book.with_holding(symbol, trial))
    db.commit()
    rt.mirror.booked_fills.add(trade_id)
    positions_written(rt, positions, now)
    rt.book.holdings[symbol] = trial
    rt.last_fill_ms = max(rt.last_fill_ms, int(timestamp.timestamp() * 1000))
    return True


def _update_plan(db, plan: TradePlan, order: Order, quantity: float, now: datetime) -> None:
    """Entry fills add to what the plan holds; exit fills take from it."""
    if order.purpose == "entry":
        held = plan.filled_size + quantity
        revise_plan(db, plan, "entry filled", now, filled_size=held, status="open"
                    if plan.status == "pending" else plan.status)
        return
    remaining = max(0.0, plan.filled_size - quantity)
    if remaining <= DUST * max(1.0, plan.size):
        revise_plan(db, plan, f"exit filled: {plan.exit_reason or 'exit'}", now,
                    filled_size=0.0, status="closed", closed_at=now)
    else:
        # A partial exit re-arms the stop and target for what remains.
        revise_plan(db, plan, "partial exit; re-armed for the rest", now,
                    filled_size=remaining, size=remaining, status="open",
                    exit_client_order_id=None)
