"""Carry out one validated action, after the risk layer has had its say.

Every path returns a result dict for the trace: what was placed (client and venue ids), or
the rule that refused it. Nothing here raises for a refusal.
"""

from __future__ import annotations

from typing import Any

from bot.booking import exit_plan, plan_holding
from bot.engine.schema import Action, ActionType
from bot.execution import (
    cancel_order,
    decision_client_order_id,
    journal_new_order,
    own_order,
    place_order,
    send_journaled,
    send_or_report,
)
from bot.model.entry_price import entry_price, fit_to_cap
from bot.model.vocabulary import OrderPurpose, OrderStatus, OrderType, Outcome, PlanStatus, Side
from bot.positions import DUST
from bot.resting_stop import cancel_resting
from bot.risk import RiskState, Rule, check_entry
from bot.runtime import Runtime
from db.models import TradePlan
from db.orders import by_client_id
from db.plans import ACTIVE, active_plans, create_plan, revise_plan

DEFAULT_STOP_PCT = 2.0
DEFAULT_TARGET_PCT = 4.0


def execute_action(
    rt: Runtime, db, action: Action, trace_id: int, state: RiskState | None, index: int = 0
) -> dict[str, Any]:
    """Run one action; ``index`` (its place in the decision) fixes its entry's client id.

    ``state`` is needed for entries only: the risk layer never judges an exit. What must be
    committed before a venue call is; the action's last writes may be left to the caller's
    next commit (``bot.steps.decide._execute`` commits them with the outcome).
    """
    if action.action is ActionType.HOLD:
        return hold_outcome(action)
    handlers = {
        ActionType.BUY: lambda: _enter(rt, db, action, trace_id, state, index),
        ActionType.SELL: lambda: _sell(rt, db, action, trace_id),
        ActionType.CANCEL: lambda: _cancel(rt, db, action),
        ActionType.UPDATE_PLAN: lambda: _update_plan(rt, db, action, trace_id),
        ActionType.CLOSE_PLAN: lambda: _close_plan(rt, db, action, trace_id),
    }
    result = handlers[action.action]()
    return {"action": action.action.value, "symbol": action.symbol, **result}


def hold_outcome(action: Action) -> dict[str, Any]:
    """A HOLD does nothing: its outcome needs neither a trace nor the database. A HOLD of
    no symbol (the rules engine's, most steps) names none: a trace stores no null."""
    symbol = {} if action.symbol is None else {"symbol": action.symbol}
    return {"action": action.action.value, **symbol, "status": Outcome.HOLD}


def _enter(rt: Runtime, db, action: Action, trace_id: int, state: RiskState | None,
           index: int) -> dict[str, Any]:
    symbol = action.symbol or ""
    cid = decision_client_order_id(rt, trace_id, index)
    journaled = by_client_id(db, cid)
    if journaled is not None:  # a redone iteration: this action was already executed
        placement = send_or_report(rt, db, journaled, maybe_sent=True)
        return {"status": Outcome.PLACED if placement.ok else Outcome.FAILED,
                "plan_id": journaled.plan_id, "redone": True, **placement.as_dict()}
    quote = rt.quotes.get(symbol)
    reference = entry_price(action.order_type, action.price, quote.ask if quote else None,
                            quote.last if quote else None)
    if not reference:
        return {"status": Outcome.REFUSED, "rule": Rule.NO_MARKET_DATA, "detail": "no price"}
    amount = fit_to_cap(action.size if action.size else (action.quote_value or 0) / reference,
                        reference, rt.settings.max_order_value)
    assert state is not None, "entries are always risk-checked"
    target = action.target or reference * (1 + DEFAULT_TARGET_PCT / 100)
    refusal = check_entry(rt.settings, state, symbol, Side.BUY, amount, reference, target, quote)
    if refusal is not None:
        rt.events.refused(refusal.rule, refusal.detail, rt.session_id)
        return {"status": Outcome.REFUSED, "rule": refusal.rule, "detail": refusal.detail}
    now = rt.now()
    plan = create_plan(
        db, now, session_id=rt.session_id, symbol=symbol, side=Side.BUY, entry_price=reference,
        stop_price=action.stop or reference * (1 - DEFAULT_STOP_PCT / 100),
        target_price=target,
        size=amount, status=PlanStatus.PENDING, reason=action.reason, trace_id=trace_id,
        entry_client_order_id=cid,
    )
    # The plan and its entry's journal row commit together: no plan without its order.
    order_type = (OrderType.LIMIT if action.order_type == OrderType.LIMIT and action.price
                  else OrderType.MARKET)
    order = journal_new_order(
        rt, db, symbol=symbol, side=Side.BUY, amount=amount, purpose=OrderPurpose.ENTRY,
        reason=action.reason,
        order_type=order_type, price=action.price if order_type == OrderType.LIMIT else None,
        plan_id=plan.id, trace_id=trace_id, client_order_id=cid, looked_up=True,
    )
    placement = send_journaled(rt, db, order, commit=False)  # the caller commits it
    plan.entry_order_id = placement.order_id
    if not placement.ok:
        revise_plan(db, plan, f"entry failed: {placement.error}", now, decided_by=trace_id,
                    status=PlanStatus.CLOSED, exit_reason=f"entry failed: {placement.error}",
                    closed_at=now)
    status = Outcome.PLACED if placement.ok else Outcome.FAILED
    return {"status": status, "plan_id": plan.id, **placement.as_dict()}


def _sell(rt: Runtime, db, action: Action, trace_id: int) -> dict[str, Any]:
    """Spot is long-only: a SELL reduces what we hold, through its plans when it has any;
    its size is honoured (a part of the plans is sold by ``_sell_part``)."""
    symbol = action.symbol or ""
    held = rt.book.quantity(symbol)
    if held <= 0:
        return {"status": Outcome.REFUSED, "rule": "nothing_held", "detail": f"no {symbol} held"}
    amount = min(held, action.size or held)
    plans = active_plans(db, rt.session_id, symbol)
    reason = action.reason or "engine sell"
    if plans and amount + DUST < sum(plan_holding(rt, p) for p in plans):
        return _sell_part(rt, db, plans, amount, reason, trace_id)
    if plans:
        results = [exit_plan(rt, db, p, reason, rt.now(), trace_id) for p in plans]
        return {"status": Outcome.EXITING, "plans": [p.id for p in plans],
                "orders": [r.as_dict() for r in results if r is not None]}
    placement = place_order(rt, db, symbol=symbol, side=Side.SELL, amount=amount,
                            purpose=OrderPurpose.EXIT, reason=action.reason, trace_id=trace_id)
    return {"status": Outcome.PLACED if placement.ok else Outcome.FAILED, **placement.as_dict()}


def _sell_part(rt: Runtime, db, plans: list[TradePlan], amount: float, reason: str,
               trace_id: int) -> dict[str, Any]:
    """Sell ``amount``, less than the plans hold, out of the open plans, oldest first.

    A plan sold whole exits; one sold in part stays open with its stop and target armed,
    and its exit's fill takes the part off it (``bot.booking``), so it then guards the rest.
    """
    left, sold, orders = amount, [], []
    for plan in plans:
        part = min(left, plan_holding(rt, plan)) if plan.status == PlanStatus.OPEN else 0.0
        if part <= DUST:
            continue
        if part + DUST >= plan_holding(rt, plan):
            placement = exit_plan(rt, db, plan, reason, rt.now(), trace_id)
        else:  # the plan's resting stop holds the coins; the plan step rests a new one
            cancel_resting(rt, db, plan)
            placement = place_order(rt, db, symbol=plan.symbol, side=Side.SELL, amount=part,
                                    purpose=OrderPurpose.EXIT, reason=reason, plan_id=plan.id,
                                    trace_id=trace_id)
        left -= part
        sold.append(plan.id)
        if placement is not None:
            orders.append(placement.as_dict())
    outcome: dict[str, Any] = {"status": Outcome.EXITING if sold else Outcome.REFUSED,
                               "plans": sold, "orders": orders}
    if left > DUST:  # the rest is in plans already exiting or whose entry is still filling
        outcome |= {"rule": "not_in_open_plans",
                    "detail": f"{left:g} {plans[0].symbol} of the sell is in no open plan"}
    return outcome


def _cancel(rt: Runtime, db, action: Action) -> dict[str, Any]:
    order = own_order(rt, db, action.order_id or "")
    if order is None or order.status != OrderStatus.OPEN:
        return {"status": Outcome.REFUSED, "rule": "unknown_order", "detail": action.order_id}
    return {"status": cancel_order(rt, db, order), "order_id": order.order_id}


def _plan_of(rt: Runtime, db, action: Action) -> TradePlan | None:
    """The action's plan if it is one of the run's active plans (``active_plans``' test,
    on the one row rather than by reading them all)."""
    plan = db.get(TradePlan, action.plan_id) if action.plan_id else None
    if plan is None or plan.status not in ACTIVE or plan.session_id not in rt.session_ids(db):
        return None
    return plan


def _update_plan(rt: Runtime, db, action: Action, trace_id: int) -> dict[str, Any]:
    plan = _plan_of(rt, db, action)
    if plan is None:
        return {"status": Outcome.REFUSED, "rule": "unknown_plan", "detail": str(action.plan_id)}
    revise_plan(db, plan, f"updated: {action.reason}"[:500], rt.now(), decided_by=trace_id,
                stop_price=action.stop or plan.stop_price,
                target_price=action.target or plan.target_price)
    return {"status": Outcome.UPDATED, "plan_id": plan.id, "version": plan.version}


def _close_plan(rt: Runtime, db, action: Action, trace_id: int) -> dict[str, Any]:
    plan = _plan_of(rt, db, action)
    if plan is None:
        return {"status": Outcome.REFUSED, "rule": "unknown_plan", "detail": str(action.plan_id)}
    placement = exit_plan(rt, db, plan, action.reason or "closed by engine", rt.now(), trace_id)
    return {"status": Outcome.EXITING, "plan_id": plan.id,
            **(placement.as_dict() if placement else {"detail": "nothing held"})}



