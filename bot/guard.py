"""Stops while the database is down: the bot still guards the positions it knows of.

A plan's stop lives in the bot; while ``Outage.run`` waits out a database that is down, the
loop cannot read plans or journal orders, yet the venue (not the database) may still answer.
``StopGuard`` keeps, in memory, what enforcing a stop needs (a snapshot of the open plans the
plan step last read), checks the venue's price at each wait of the outage, and sends the exit
of a plan whose stop is hit with a deterministic client order id carrying the bot's prefix,
so a retry of the same exit answers DuplicateOrder instead of selling twice. When the
database answers again, before the touch that waited, ``settle`` journals those exits and
marks their plans closing with the exit's id: the fill sync then books their fills once, and
plan enforcement waits for that exit instead of sending another.

Only stops are guarded: a target or an expiry is not a protection, and waits for the store.
A plan opened (or changed) after the plan step's last read is guarded by the snapshot before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.model.vocabulary import OrderPurpose, OrderType, PlanStatus, Side, closing_side
from bot.positions import DUST
from bot.venue.base import DuplicateOrder, TransientVenueError, VenueError, journal_status
from db.models import Order, TradePlan
from db.orders import by_client_id
from db.plans import revise_plan
from db.retry import is_outage

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger("tradedesk.guard")


@dataclass(frozen=True)
class KnownStop:
    """What enforcing one open plan's stop needs, as the plan step last read it."""

    plan_id: int
    version: int
    symbol: str
    side: str  # the plan's: BUY is a long, whose stop sells
    filled_size: float
    stop: float

    def hit(self, price: float) -> bool:
        return price <= self.stop if self.side == Side.BUY else price >= self.stop


@dataclass(frozen=True)
class SentExit:
    """An exit sent while the database was down, to journal once it answers."""

    stop: KnownStop
    client_order_id: str
    order_type: str
    amount: float
    placed: dict[str, Any]  # the venue's answer ({} when it said the id was already used)
    sent_at: datetime

    @property
    def reason(self) -> str:
        return stop_reason(self.stop.stop)


@dataclass
class StopGuard:
    stops: dict[int, KnownStop] = field(default_factory=dict)  # plan id -> its stop
    sent: dict[int, SentExit] = field(default_factory=dict)  # plan id -> exit to journal
    # set while sending or journaling: the paper venue, whose account is in the same
    # database, waits out the outage inside a send, and that wait must not guard again
    _busy: bool = False

    def remember(self, plans: Iterable[TradePlan]) -> None:
        """The plans the plan step just read and enforced (the loaded rows, as committed)."""
        self.stops = {
            p.id: KnownStop(p.id, p.version, p.symbol, p.side, p.filled_size, p.stop_price)
            for p in plans if p.status == PlanStatus.OPEN
        }

    def watch(self, rt: Runtime) -> None:
        """At a wait of an outage: send the exit of every known plan whose stop is hit."""
        if self._busy:
            return
        self._busy = True
        try:
            for stop in list(self.stops.values()):
                if stop.plan_id in self.sent:
                    continue
                try:
                    self._guard(rt, stop)
                except VenueError as exc:  # the venue may be down too: the next wait retries
                    log.warning("stop of plan %d not checked: %s: %s", stop.plan_id,
                                type(exc).__name__, exc)
        finally:
            self._busy = False

    def _guard(self, rt: Runtime, stop: KnownStop) -> None:
        held = min(stop.filled_size, abs(rt.book.quantity(stop.symbol)))
        if held <= DUST or stop.plan_id in rt.store.resting_stops:  # the venue holds that stop
            return
        price = float(rt.call(rt.venue.fetch_ticker, stop.symbol)["last"])
        if not stop.hit(price):
            return
        cid = guard_client_order_id(rt, stop)
        # as ``bot.booking.exit_plan``: a stop order at the stop on the paper venue
        # (it fills at the stop or worse), a market order on an exchange
        order_type = OrderType.STOP if rt.venue.is_paper else OrderType.MARKET
        side = closing_side(stop.side).lower()  # ccxt's
        try:
            placed = rt.call(rt.venue.create_order, stop.symbol, order_type, side, held,
                             stop.stop if order_type == OrderType.STOP else None,
                             {"clientOrderId": cid})
        except DuplicateOrder:
            placed = {}  # an earlier attempt reached the venue
        except TransientVenueError as exc:
            log.warning("exit %s of plan %d not sent: %s; retrying at the next wait", cid,
                        stop.plan_id, exc)
            return
        self.sent[stop.plan_id] = SentExit(stop, cid, order_type, held, placed, rt.now())
        log.warning("stop of plan %d hit at %g while the database is down: exit %s sent",
                    stop.plan_id, price, cid)

    def settle(self, rt: Runtime) -> None:
        """Journal the exits sent during the outage and mark their plans closing, in one
        transaction, before the waiting touch is retried. An outage error raises (the wait
        goes on, the exits stay in memory); any other error is noted and the exits kept."""
        if self._busy or not self.sent:
            return
        self._busy = True
        try:
            self._journal(rt)
        except Exception as exc:
            if is_outage(exc):
                raise
            rt.note_error("journaling exits sent while the database was down", exc)
            return
        finally:
            self._busy = False
        for plan_id in list(self.sent):
            self.stops.pop(plan_id, None)
        self.sent.clear()

    def _journal(self, rt: Runtime) -> None:
        now = rt.now()
        with rt.db() as db:
            for sent in self.sent.values():
                if by_client_id(db, sent.client_order_id) is None:
                    db.add(Order(
                        session_id=rt.session_id, client_order_id=sent.client_order_id,
                        order_id=str(sent.placed["id"]) if sent.placed.get("id") else None,
                        symbol=sent.stop.symbol, side=closing_side(sent.stop.side),
                        type=sent.order_type, amount=sent.amount,
                        price=sent.stop.stop if sent.order_type == OrderType.STOP else None,
                        purpose=OrderPurpose.EXIT, status=journal_status(sent.placed), attempts=1,
                        reason=sent.reason, plan_id=sent.stop.plan_id,
                        created_at=sent.sent_at, updated_at=now,
                    ))
                plan = db.get(TradePlan, sent.stop.plan_id)
                if plan is not None and plan.status == PlanStatus.OPEN:
                    revise_plan(db, plan, f"exit: {sent.reason} (sent while the database was "
                                "down)", now, status=PlanStatus.CLOSING, exit_reason=sent.reason,
                                exit_client_order_id=sent.client_order_id)
            db.commit()


def stop_reason(stop: float) -> str:
    """How a stop exit is worded, whoever sends it: the plan step, this guard, or the venue
    (a stop resting there)."""
    return f"stop hit at {stop:g}"


def guard_client_order_id(rt: Runtime, stop: KnownStop) -> str:
    """The same for every attempt at one version of a plan: a retry is a duplicate, and a
    plan re-armed later (a new version) exits under a new id. ``g`` keeps it apart from the
    counter and decision ids."""
    return f"{rt.prefix}g{stop.plan_id}v{stop.version}"
