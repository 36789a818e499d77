"""Trade plans: every change writes a new version and keeps the old one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session as OrmSession

from db.core import table_of
from db.models import TradePlan, TradePlanVersion
from db.sessions import of_run

ACTIVE = ("pending", "open", "closing")


_VERSIONS = table_of(TradePlanVersion)
_ADD_VERSION = insert(_VERSIONS)  # built once, on the table


def _add_version(db: OrmSession, plan: TradePlan, change: str, now: datetime,
                 trace_id: int | None) -> None:
    """The plan's current state as a new version row, uncommitted: one INSERT on the
    session's connection rather than an object for the ORM's next flush (nothing reads
    version rows back in the transaction that writes them)."""
    db.connection().execute(_ADD_VERSION, {
        "plan_id": plan.id, "version": plan.version, "entry_price": plan.entry_price,
        "stop_price": plan.stop_price, "target_price": plan.target_price, "size": plan.size,
        "status": plan.status, "change": change, "created_at": now, "trace_id": trace_id})


def create_plan(db: OrmSession, now: datetime, **fields: object) -> TradePlan:
    """Insert a plan (version 1) and its first version row, uncommitted; the version names
    the plan's deciding trace, as the plan does."""
    plan = TradePlan(opened_at=now, version=1, **fields)
    db.add(plan)
    db.flush()
    _add_version(db, plan, "opened", now, plan.trace_id)
    return plan


def revise_plan(db: OrmSession, plan: TradePlan, change: str, now: datetime, *,
                decided_by: int | None = None, **fields: object) -> None:
    """Change a plan: bump its version and record the new state, uncommitted.
    ``decided_by``: the trace of the decision that makes the change (None: the plan step, a
    fill, a command), named by the version so that retention keeps it."""
    changed = {k: v for k, v in fields.items() if getattr(plan, k) != v}
    if not changed:
        return
    for key, value in changed.items():
        setattr(plan, key, value)
    if plan.status == "closed" and plan.closed_at is None:
        plan.closed_at = now
    plan.version += 1
    _add_version(db, plan, change, now, decided_by)


# Built once: plans are enforced at every iteration, and building the select cost more
# than running it.
_ACTIVE = select(TradePlan).where(of_run(TradePlan.session_id), TradePlan.status.in_(ACTIVE))
_ACTIVE_ALL = _ACTIVE.order_by(TradePlan.id)
_ACTIVE_OF_SYMBOL = _ACTIVE.where(TradePlan.symbol == bindparam("symbol")).order_by(TradePlan.id)


def active_plans(db: OrmSession, session_id: int, symbol: str | None = None) -> list[TradePlan]:
    """The active plans of the run that session ``session_id`` belongs to (``of_run``)."""
    if symbol is None:
        return list(db.scalars(_ACTIVE_ALL, {"session_id": session_id}))
    return list(db.scalars(_ACTIVE_OF_SYMBOL, {"session_id": session_id, "symbol": symbol}))


def active_filled_plans(db: OrmSession, session_ids: list[int]) -> list[TradePlan]:
    """The sessions' active plans that hold fills: each must be backed by a position."""
    return list(db.scalars(select(TradePlan).where(
        TradePlan.session_id.in_(session_ids), TradePlan.status.in_(ACTIVE),
        TradePlan.filled_size > 0)))
