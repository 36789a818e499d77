"""Parse an engine's answer and check each action against what the bot knows.

The LLM's output is untrusted input: it may be malformed, hallucinate symbols, orders or
plans, put a stop on the wrong side, or carry text written to manipulate whoever reads it.
``parse_decision`` turns any text into a ``Decision`` (a HOLD when nothing usable parses)
and ``validate_decision`` keeps only actions that break no rule, with the reason for every
rejection, so nothing unchecked reaches the risk layer.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from pydantic import ValidationError

from bot.config import Settings
from bot.engine.schema import Action, ActionType, Decision
from bot.model.decision import DecisionContext
from bot.model.entry_price import entry_price

MAX_RAW_CHARS = 200_000
MAX_ACTIONS = 20
MAX_REASON_CHARS = 500
MAX_SUMMARY_CHARS = 1000
MAX_ERROR_CHARS = 300
SANITY_ORDER_VALUE_FACTOR = 10  # beyond max_order_value * this, a size is nonsense
MAX_LIMIT_DEVIATION = 0.2  # a limit price further than 20% from the last price is a typo
EXITS = (ActionType.SELL, ActionType.CLOSE_PLAN)
_FENCE_RE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")

Rejection = dict[str, Any]


def hold(reason: str) -> Decision:
    return Decision(actions=[Action(action=ActionType.HOLD, reason=sanitize(reason))])


def parse_decision(raw_text: str | None) -> tuple[Decision, list[str], list[str]]:
    """A Decision from raw model text, its errors and its notes; anything unusable becomes a
    HOLD with the errors.

    Lenient about shape (code fences, prose around the JSON, lower-case action names, a bare
    list of actions, over-long text), strict about content: an action that does not fit the
    schema is dropped with an error instead of sinking the whole decision. A note names a
    field dropped from an action that goes all the same (an exit's bad confidence).
    """
    if not raw_text or not raw_text.strip():
        return hold("empty response"), ["empty response"], []
    if len(raw_text) > MAX_RAW_CHARS:
        return hold("response too long"), [f"response of {len(raw_text)} chars refused"], []
    try:
        payload = json.loads(_extract_json(raw_text))
    except (ValueError, RecursionError) as exc:
        return hold("unparseable response"), [f"response is not JSON: {exc}"[:300]], []
    if isinstance(payload, list):
        payload = {"actions": payload}
    if not isinstance(payload, dict):
        return hold("unparseable response"), ["response JSON is not an object"], []
    items = payload.get("actions")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return hold("no actions"), ["response has no 'actions' list"], []
    errors: list[str] = []
    notes: list[str] = []
    actions: list[Action] = []
    for index, item in enumerate(items[:MAX_ACTIONS]):
        action = _parse_action(item, index, errors, notes)
        if action is not None:
            actions.append(action)
    if len(items) > MAX_ACTIONS:
        errors.append(f"{len(items) - MAX_ACTIONS} actions beyond the first {MAX_ACTIONS} ignored")
    summary = payload.get("summary")
    summary = sanitize(summary, MAX_SUMMARY_CHARS) if isinstance(summary, str) else ""
    if not actions:
        return Decision(actions=hold("no valid action").actions, summary=summary), errors, notes
    return Decision(actions=actions, summary=summary), errors, notes


def _extract_json(text: str) -> str:
    """The JSON object in ``text``, tolerating code fences and prose around it."""
    text = _FENCE_RE.sub("", text.strip())
    if text[:1] in "{[":
        return text
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def _parse_action(item: Any, index: int, errors: list[str],
                  notes: list[str]) -> Action | None:
    if not isinstance(item, dict):
        errors.append(f"action {index}: not an object")
        return None
    item = dict(item)
    if isinstance(item.get("action"), str):
        item["action"] = item["action"].strip().upper()
    reason = item.get("reason")
    item["reason"] = sanitize(reason) if isinstance(reason, str) else ""
    try:
        return Action.model_validate(item)
    except ValidationError as exc:
        failed = {".".join(map(str, e["loc"])) for e in exc.errors()}
        if failed == {"confidence"} and item.get("action") in EXITS:
            # nothing trades on a confidence, and an exit is never refused: it goes without
            notes.append(f"action {index}: confidence {item['confidence']!r:.40} is not "
                          "between 0 and 1: dropped")
            return Action.model_validate(item | {"confidence": None})
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        wrong = "; ".join(filter(None, map(_not_a_number, exc.errors())))
        errors.append((f"action {index}: invalid {fields}" + (f" ({wrong})" if wrong else ""))
                      [:MAX_ERROR_CHARS])
        return None


def _not_a_number(error: Any) -> str | None:
    """What a field that takes a number strictly was given instead, in words (the JSON the
    model wrote), or None for any other failure."""
    given = error.get("input")
    if error["type"] not in ("float_type", "int_type") or not isinstance(given, str | bool):
        return None
    kind = "a boolean" if isinstance(given, bool) else "a string"
    field = ".".join(map(str, error["loc"]))
    return f"{field} is {json.dumps(given)[:40]}, {kind}, not a number"


def sanitize(text: Any, limit: int = MAX_REASON_CHARS) -> str:
    """Printable single-line text of bounded length: reasons end up in logs and pages."""
    if not isinstance(text, str):
        return ""
    cleaned = text[: limit * 4]
    # Printable text has no control character and no whitespace but the space: only runs
    # of spaces remain to collapse (the check per character cost 10 us a decision).
    if not cleaned.isprintable():
        cleaned = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in cleaned)
        cleaned = _SPACE_RE.sub(" ", cleaned)
    elif "  " in cleaned:
        cleaned = _SPACE_RE.sub(" ", cleaned)
    cleaned = cleaned.strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def validate_decision(
    decision: Decision, context: DecisionContext, settings: Settings
) -> tuple[list[Action], list[Rejection]]:
    """The actions that break no rule (normalised: sizes in base units) and the rejections."""
    valid: list[Action] = []
    rejected: list[Rejection] = []
    bought: set[str] = set()
    sold: dict[str, float] = {}  # what the decision's SELLs before this one sell, by symbol
    for action in decision.actions[:MAX_ACTIONS]:
        action = _with(action, {"reason": sanitize(action.reason)})
        try:
            checked = _check(action, context, settings, sold)
        except _Invalid as exc:
            rejected.append({"action": action.model_dump(mode="json"), "reason": str(exc)})
            continue
        if checked.action is ActionType.BUY:
            if checked.symbol in bought:
                rejected.append({"action": action.model_dump(mode="json"),
                                 "reason": "a second BUY of the same symbol in one decision"})
                continue
            bought.add(str(checked.symbol))
        if checked.action is ActionType.SELL:
            sold[str(checked.symbol)] = sold.get(str(checked.symbol), 0.0) + (checked.size or 0.0)
        valid.append(checked)
    for action in decision.actions[MAX_ACTIONS:]:
        rejected.append({"action": action.model_dump(mode="json"),
                         "reason": f"more than {MAX_ACTIONS} actions"})
    return valid, rejected


class _Invalid(ValueError):
    """One rule an action breaks; the message is the rejection reason."""


def _check(action: Action, context: DecisionContext, settings: Settings,
           sold: dict[str, float]) -> Action:
    match action.action:
        case ActionType.HOLD:
            return _with(action, {"size": None, "quote_value": None})
        case ActionType.BUY | ActionType.SELL:
            return _check_order(action, context, settings, sold.get(str(action.symbol), 0.0))
        case ActionType.CANCEL:
            ids = {o.get(k) for o in context.open_orders for k in ("order_id", "client_order_id")}
            if not action.order_id or action.order_id not in ids - {None}:
                raise _Invalid(f"order {action.order_id!r} is not among the open orders")
            return action
        case ActionType.UPDATE_PLAN | ActionType.CLOSE_PLAN:
            return _check_plan_action(action, context)
    raise _Invalid(f"unknown action {action.action!r}")


def _check_order(action: Action, context: DecisionContext, settings: Settings,
                 sold: float) -> Action:
    """``sold``: what the decision's earlier SELLs of the symbol sell. The fills of this
    decision are booked at the next iteration, so the position of the context is the one
    they all share: a SELL beyond what they left would sell what is not ours (another
    bot's coins on a shared account)."""
    symbol = action.symbol
    if symbol not in settings.symbols or symbol not in context.markets:
        raise _Invalid(f"symbol {symbol!r} is not configured")
    last = context.markets[symbol].last
    if not _positive(last):
        raise _Invalid(f"no valid last price for {symbol}")
    order_type = (action.order_type or "market").lower()
    if order_type not in ("market", "limit"):
        raise _Invalid(f"order type {action.order_type!r} is neither market nor limit")
    if action.price is not None and not _positive(action.price):
        raise _Invalid("price must be a positive finite number")
    if order_type == "limit":
        if action.price is None:
            raise _Invalid("a limit order needs a price")
        if abs(action.price / last - 1) > MAX_LIMIT_DEVIATION:
            raise _Invalid(f"limit price {action.price} is too far from last {last}")
    entry = entry_price(order_type, action.price, context.markets[symbol].ask, last)
    size = _size(action, entry)
    position = _position_quantity(context, symbol)
    held = position - sold
    if action.action is ActionType.SELL:
        if held <= position * 1e-9:
            raise _Invalid("no position to sell: short selling is not supported on spot"
                           if sold == 0 else f"the decision's SELLs before it sell the "
                           f"whole position {position}")
        size = held if size is None else size
        if size > held + position * 1e-9:
            raise _Invalid(f"sell size {size} exceeds the position {held}" if sold == 0
                           else f"sell size {size} exceeds the {held} of the position "
                           f"{position} its decision's SELLs before it leave")
    if size is None:
        raise _Invalid("a BUY needs a size or a quote_value")
    if not _positive(size):
        raise _Invalid("size must be a positive finite number")
    # Only an entry can be nonsense-sized: a SELL is bounded by the position above, and no
    # check may refuse a risk-reducing order (a cap lowered below a position included).
    if (action.action is ActionType.BUY
            and size * entry > settings.max_order_value * SANITY_ORDER_VALUE_FACTOR):
        raise _Invalid(f"order value {size * entry:.2f} is beyond any sane size")
    update: dict[str, Any] = {"size": size, "quote_value": None, "order_type": order_type}
    if action.action is ActionType.SELL:
        # Spot SELL only reduces a long: a stop or target would describe a short that
        # cannot exist, so they are dropped rather than half-honoured.
        update |= {"stop": None, "target": None}
    else:
        # A limit above the market fills at once, at the market: the stop must lie below
        # that too, or the plan is stopped out as it opens.
        _check_sides(action.action, entry, None, action.target)
        _check_sides(action.action, min(entry, last), action.stop, None)
    return _with(action, update)


def _size(action: Action, entry: float) -> float | None:
    if action.size is not None:
        if not _positive(action.size):
            raise _Invalid("size must be a positive finite number")
        return action.size
    if action.quote_value is not None:
        if not _positive(action.quote_value):
            raise _Invalid("quote_value must be a positive finite number")
        return action.quote_value / entry
    return None


def _check_sides(side: ActionType, price: float, stop: float | None,
                 target: float | None) -> None:
    """A long's stop is below the price and its target above; a short's the reverse."""
    for name, value in (("stop", stop), ("target", target)):
        if value is not None and not _positive(value):
            raise _Invalid(f"{name} must be a positive finite number")
    below, above = (stop, target) if side is ActionType.BUY else (target, stop)
    if below is not None and not below < price:
        raise _Invalid(f"{'stop' if side is ActionType.BUY else 'target'} {below} "
                       f"must be below the price {price}")
    if above is not None and not above > price:
        raise _Invalid(f"{'target' if side is ActionType.BUY else 'stop'} {above} "
                       f"must be above the price {price}")


def _check_plan_action(action: Action, context: DecisionContext) -> Action:
    plan = next((p for p in context.open_plans
                 if p.get("id") == action.plan_id and p.get("status") != "closed"), None)
    if action.plan_id is None or plan is None:
        raise _Invalid(f"plan {action.plan_id!r} is not an open plan")
    if action.symbol is not None and action.symbol != plan["symbol"]:
        raise _Invalid(f"plan {action.plan_id} is for {plan['symbol']}, not {action.symbol}")
    update = {"symbol": plan["symbol"], "size": None, "quote_value": None, "price": None}
    if action.action is ActionType.CLOSE_PLAN:
        return _with(action, update | {"stop": None, "target": None})
    if action.stop is None and action.target is None:
        raise _Invalid("UPDATE_PLAN needs a new stop or target")
    view = context.markets.get(plan["symbol"])
    price = view.last if view is not None and _positive(view.last) else plan["entry_price"]
    side = ActionType.SELL if str(plan.get("side", "BUY")).upper() == "SELL" else ActionType.BUY
    _check_sides(side, price, action.stop, action.target)
    return _with(action, update)


def _with(action: Action, update: dict[str, Any]) -> Action:
    """``action.model_copy(update=update)``, or ``action`` itself when it holds these very
    values already (a clean HOLD: most decisions), since a copy costs more than its checks."""
    for key, value in update.items():
        held = getattr(action, key)
        if held is not value and not (type(value) is str and held == value):
            return action.model_copy(update=update)
    return action


def _position_quantity(context: DecisionContext, symbol: str) -> float:
    return sum(float(p.get("quantity") or 0.0) for p in context.positions
               if p.get("symbol") == symbol)


def _positive(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
