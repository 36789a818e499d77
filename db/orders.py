"""The order journal: written before the venue call, updated with what the venue said."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from db.models import Order

LIVE_STATUSES = ("new", "open")


def journal_order(db: OrmSession, **fields: object) -> Order:
    order = Order(**fields)
    db.add(order)
    db.commit()
    return order


def by_client_id(db: OrmSession, client_order_id: str) -> Order | None:
    return db.scalars(select(Order).where(Order.client_order_id == client_order_id)).one_or_none()


def by_venue_id(db: OrmSession, order_id: str) -> Order | None:
    return db.scalars(select(Order).where(Order.order_id == order_id).limit(1)).one_or_none()


def live_orders(db: OrmSession, session_ids: list[int]) -> list[Order]:
    return list(
        db.scalars(
            select(Order).where(Order.session_id.in_(session_ids), Order.status.in_(LIVE_STATUSES))
        )
    )


def mark(db: OrmSession, order: Order, now: datetime, **fields: object) -> None:
    for key, value in fields.items():
        setattr(order, key, value)
    order.updated_at = now
    db.commit()
