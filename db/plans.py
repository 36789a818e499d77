"""Trade plans: every change writes a new version and keeps the old one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session as OrmSession

from db.models import TradePlan, TradePlanVersion

ACTIVE = ("pending", "open", "closing")


def _snapshot(plan: TradePlan, change: str, now: datetime) -> TradePlanVersion:
    return TradePlanVersion(
        plan_id=plan.id, version=plan.version, entry_price=plan.entry_price,
        stop_price=plan.stop_price, target_price=plan.target_price, size=plan.size,
        status=plan.status, change=change, created_at=now,
    )


def create_plan(db: OrmSession, now: datetime, **fields: object) -> TradePlan:
    """Insert a plan (version 1) and its first version row, uncommitted."""
    plan = TradePlan(opened_at=now, version=1, **fields)
    db.add(plan)
    db.flush()
    db.add(_snapshot(plan, "opened", now))
    return plan


def revise_plan(db: OrmSession, plan: TradePlan, change: str, now: datetime, **fields: object) -> None:
    """Change a plan: bump its version and record the new state, uncommitted."""
    changed = {k: v for k, v in fields.items() if getattr(plan, k) != v}
    if not changed:
        return
    for key, value in changed.items():
        setattr(plan, key, value)
    if plan.status == "closed" and plan.closed_at is None:
        plan.closed_at = now
    plan.version += 1
    db.add(_snapshot(plan, change, now))


# Built once: plans are enforced at every iteration, and building the select cost more
# than running it.
_ACTIVE = select(TradePlan).where(
    TradePlan.session_id.in_(bindparam("session_ids", expanding=True)),
    TradePlan.status.in_(ACTIVE))
_ACTIVE_ALL = _ACTIVE.order_by(TradePlan.id)
_ACTIVE_OF_SYMBOL = _ACTIVE.where(TradePlan.symbol == bindparam("symbol")).order_by(TradePlan.id)


def active_plans(db: OrmSession, session_ids: list[int], symbol: str | None = None) -> list[TradePlan]:
    if symbol is None:
        return list(db.scalars(_ACTIVE_ALL, {"session_ids": session_ids}))
    return list(db.scalars(_ACTIVE_OF_SYMBOL, {"session_ids": session_ids, "symbol": symbol}))
