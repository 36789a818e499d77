"""The order journal: written before the venue call, updated with what the venue said.

The journal holds every bot's and every replay's orders. A lookup by venue order id, and a
fill's lookup by client order id, is scoped to the sessions of the run asking: on an
exchange account shared by several bots, an id can name another bot's order, which this
bot must never book, cancel or sell. A lookup names its run by one of the run's sessions
(``db.sessions.of_run``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.vocabulary import LIVE_ORDER, OrderPurpose, OrderStatus, PlanStatus, RunKind
from db.models import Order, Trade, TradePlan
from db.sessions import latest_session, of_run

MAX_LISTED = 10  # open orders named in a refused cancel


def journal_order(db: OrmSession, **fields: object) -> Order:
    order = Order(**fields)
    db.add(order)
    db.commit()
    return order


# Built once: the loop looks orders up at every iteration, and building a select cost
# more than running it.
_BY_CLIENT_ID = select(Order).where(Order.client_order_id == bindparam("client_order_id"))
_OF_RUN = of_run(Order.session_id)
_BY_VENUE_ID = (select(Order).where(Order.order_id == bindparam("order_id"), _OF_RUN)
                .limit(1))
_WITH_PLAN_BY_CLIENT_ID = (select(Order, TradePlan)
                           .outerjoin(TradePlan, Order.plan_id == TradePlan.id)
                           .where(Order.client_order_id == bindparam("client_order_id"),
                                  _OF_RUN))
_LIVE = select(Order).where(_OF_RUN, Order.status.in_(LIVE_ORDER))


def by_client_id(db: OrmSession, client_order_id: str) -> Order | None:
    """Across every run: a client order id is unique in the whole journal."""
    return db.scalars(_BY_CLIENT_ID, {"client_order_id": client_order_id}).one_or_none()


def with_plan_by_client_id(
    db: OrmSession, client_order_id: str, session_id: int
) -> tuple[Order, TradePlan | None] | None:
    """The run's order and its plan (None for an order without one) in one query: a fill
    is booked against both."""
    row = db.execute(_WITH_PLAN_BY_CLIENT_ID, {"client_order_id": client_order_id,
                                               "session_id": session_id}).one_or_none()
    return None if row is None else (row[0], row[1])


def by_venue_id(db: OrmSession, order_id: str, session_id: int) -> Order | None:
    """The run's order with this venue id; None for an order of another run."""
    return db.scalars(_BY_VENUE_ID, {"order_id": order_id,
                                     "session_id": session_id}).one_or_none()


def cancel_refusal(db: OrmSession, bot: str, order_id: str) -> str | None:
    """Why ``bot`` would refuse to cancel ``order_id`` (the venue's id, as the Portfolio page
    lists it), said before the command is queued; None when the bot's live run has it open.
    The bot cancels only an open order of its own run; a mistyped id, another bot's or
    one already gone would only fail later, at the bot."""
    session = latest_session(db, RunKind.LIVE, bot)
    order = None if session is None else by_venue_id(db, order_id, session.id)
    if order is None:
        listed = [o.order_id for o in live_orders(db, session.id) if o.order_id] if session else []
        shown = ", ".join(listed[:MAX_LISTED]) + (", ..." if len(listed) > MAX_LISTED else "")
        return (f"no order of bot {bot!r} has id {order_id!r} (its orders open: "
                f"{shown or 'none'}); cancel takes the venue's order id of one of them")
    if order.status != OrderStatus.OPEN:
        return f"order {order_id} of bot {bot!r} is {order.status}, not open"
    return None


def live_orders(db: OrmSession, session_id: int) -> list[Order]:
    """The run's orders that are new or open."""
    return list(db.scalars(_LIVE, {"session_id": session_id}))


OWED_EXIT_REASON = "exit owed"  # an owed exit whose order and plan name no reason

_OWED_EXITS = (select(TradePlan.id, func.coalesce(Order.reason, TradePlan.exit_reason, ""))
               .join(Order, Order.client_order_id == TradePlan.exit_client_order_id)
               .where(of_run(TradePlan.session_id), TradePlan.status == PlanStatus.OPEN,
                      Order.status == OrderStatus.FAILED))


def owed_exits(db: OrmSession, session_id: int) -> dict[int, str]:
    """The run's open plans whose exit the venue's faults kept from being placed (its
    sends gave up): plan id -> why it exits. Each is owed its exit whatever the price does
    (``Runtime.owed_exits``); the journal keeps what a restart must still owe."""
    return {plan_id: reason or OWED_EXIT_REASON
            for plan_id, reason in db.execute(_OWED_EXITS, {"session_id": session_id})}


_COUNT = select(func.count(Order.id))


def order_count(db: OrmSession) -> int:
    """How many orders the journal holds, of every run (the client order id counter's base)."""
    return db.scalar(_COUNT) or 0


_LIVE_OF_PLAN = (select(Order).where(Order.purpose == bindparam("purpose"),
                                     Order.status.in_(LIVE_ORDER),
                                     Order.plan_id == bindparam("plan_id"))
                 .order_by(Order.id.desc()).limit(1))


def live_order_of_plan(db: OrmSession, plan_id: int, purpose: str) -> Order | None:
    """The plan's newest live order with this purpose (its resting stop), if any."""
    return db.scalars(_LIVE_OF_PLAN, {"purpose": purpose, "plan_id": plan_id}).first()


_EXITS_OF_PLAN = (select(Order).where(Order.plan_id == bindparam("plan_id"),
                                      Order.purpose == OrderPurpose.EXIT).order_by(Order.id))


def exits_of_plan(db: OrmSession, plan_id: int, *, stops: bool = False) -> list[Order]:
    """Every sell the bot sent to exit the plan or a part of it, oldest first; ``stops``:
    and every stop it rested on the venue for it, which sells the plan when it fills."""
    query = _SELLS_OF_PLAN if stops else _EXITS_OF_PLAN
    return list(db.scalars(query, {"plan_id": plan_id}))


_SELLS_OF_PLAN = (select(Order).where(
    Order.plan_id == bindparam("plan_id"),
    Order.purpose.in_((OrderPurpose.EXIT, OrderPurpose.STOP))).order_by(Order.id))


_ORDERS = Order.__table__
_ANY_LIVE = (select(_ORDERS.c.id)
             .where(of_run(_ORDERS.c.session_id), _ORDERS.c.status.in_(LIVE_ORDER)).limit(1))


def any_live_order(conn: Connection, session_id: int) -> bool:
    """Whether any of the run's orders is live: one light read, no rows loaded."""
    return conn.execute(_ANY_LIVE, {"session_id": session_id}).first() is not None


def unbooked_sells(db: OrmSession, session_id: int, symbol: str,
                   since: datetime) -> list[tuple[Order, float]]:
    """The run's SELL orders of ``symbol`` touched since ``since`` that their booked
    trades do not cover, each with what is booked of it: what the venue may have sold
    without the bot having seen the fill yet."""
    booked = (select(func.coalesce(func.sum(Trade.quantity), 0.0))
              .where(Trade.client_order_id == Order.client_order_id).scalar_subquery())
    rows = db.execute(select(Order, booked).where(
        _OF_RUN, Order.symbol == symbol, Order.side == "SELL",
        Order.updated_at >= since, booked < Order.amount,
    ), {"session_id": session_id}).all()
    return [(order, float(done)) for order, done in rows]


def mark(order: Order, now: datetime, **fields: object) -> None:
    """Record on a journal order what the venue said, uncommitted: its session's next
    commit writes it."""
    for key, value in fields.items():
        setattr(order, key, value)
    order.updated_at = now
