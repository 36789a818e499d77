"""A trace's decision and execution as an operator reads them: one row per action, in words.

The loop stores both as JSON (``llm_traces.decision_json`` and ``execution_result``); these
read them as ``db.queries_trading.trace_detail`` hands them over, whole (the decision with
every field, the result with the account its equity step holds). Anything else, a foreign
row, is read as far as it goes; the Decisions page keeps the raw text behind an expander.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from views._common import money

ACTION_FIELDS = {"action": "action", "symbol": "symbol", "size": "size",
                 "quote_value": "quote value", "order_type": "order type", "price": "price",
                 "stop": "stop", "target": "target", "confidence": "confidence",
                 "plan_id": "plan", "order_id": "order", "reason": "reason"}
OUTCOME_COLUMNS = ["action", "symbol", "outcome", "sent as", "venue order", "order status",
                   "filled", "plan", "refused because"]


@dataclass
class Read:
    """What a stored JSON text says: a table of its actions, a line about the rest, and the
    text itself indented (or as stored, when it is not JSON)."""

    rows: pd.DataFrame
    line: str = ""
    raw: str = ""


def _parsed(text: str | None) -> tuple[Any, str]:
    if not text:
        return None, ""
    try:
        value = json.loads(text)
    except ValueError:
        return None, text
    return value, json.dumps(value, indent=2, ensure_ascii=False)


def _items(value: Any) -> list[dict]:
    actions = value.get("actions") if isinstance(value, dict) else value
    return [a for a in actions if isinstance(a, dict)] if isinstance(actions, list) else []


def decision(text: str | None) -> Read:
    """The engine's actions with their size, prices, confidence and reason."""
    value, raw = _parsed(text)
    items = _items(value)
    shown = [name for name in ACTION_FIELDS if any(name in item for item in items)]
    rows = pd.DataFrame([{ACTION_FIELDS[n]: item.get(n) for n in shown} for item in items],
                        columns=[ACTION_FIELDS[n] for n in shown])
    summary = ""
    if isinstance(value, dict):
        summary = str(value.get("summary") or value.get("reasoning") or "")
    return Read(rows, summary, raw)


def execution(text: str | None) -> Read:
    """Per action what was sent, what filled and what was refused and why; the line is the
    account as the decision left it."""
    value, raw = _parsed(text)
    rows = pd.DataFrame([_outcome(item) for item in _items(value)], columns=OUTCOME_COLUMNS)
    line = ""
    if isinstance(value, dict) and "equity" in value:
        line = " · ".join(f"{name} {money(_number(value.get(key)))}" for name, key in (
            ("Equity after", "equity"), ("unrealized", "unrealized_pnl"),
            ("exposure", "exposure")))
    return Read(rows, line, raw)


def _outcome(item: dict) -> dict[str, Any]:
    orders = item.get("orders")  # an exit across plans sends several
    sent = [o for o in orders if isinstance(o, dict)] if isinstance(orders, list) else []
    plans = item.get("plans")
    why = ": ".join(str(part) for part in (item.get("rule"), item.get("detail") or
                                           item.get("error")) if part)

    def order_field(key: str) -> str | None:
        """The action's own value, else every order's, as text either way."""
        if item.get(key) is not None:
            return _text(item[key])
        return ", ".join(str(o[key]) for o in sent if o.get(key) is not None) or None

    return {
        "action": item.get("action"), "symbol": item.get("symbol"),
        "outcome": item.get("status"),
        "sent as": order_field("client_order_id"),
        "venue order": order_field("order_id"),
        "order status": order_field("order_status"),
        "filled": order_field("filled"),
        # text either way: one plan's id, or several an exit sold
        "plan": _text(item.get("plan_id")) if plans is None else ", ".join(map(str, plans)),
        "refused because": why or None,
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float | None:
    return value if isinstance(value, int | float) else None
