"""The decision schema: one pydantic model for every engine and the LLM's structured output.

Parsing is lenient about shape (a response that does not parse becomes a HOLD) and strict
about meaning: ``validate_action`` checks each action against what the bot knows and drops
what fails, with the reason, so nothing unchecked ever reaches the risk layer.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, Field


class ActionType(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"
    CANCEL = "CANCEL"
    UPDATE_PLAN = "UPDATE_PLAN"
    CLOSE_PLAN = "CLOSE_PLAN"


class Action(BaseModel):
    """One action. Its figures are numbers strictly: a string ("0.01") or a boolean (``true``,
    which lax parsing reads as 1) where a number belongs is bad output, refused, not read as
    the number it might have meant."""

    action: ActionType
    symbol: str | None = None
    size: float | None = Field(default=None, strict=True, description="Base-currency amount")
    quote_value: float | None = Field(default=None, strict=True,
                                      description="Or: amount in quote currency")
    order_type: str = Field(default="market", description="market or limit")
    price: float | None = Field(default=None, strict=True, description="Limit price (entry)")
    stop: float | None = Field(default=None, strict=True)
    target: float | None = Field(default=None, strict=True)
    order_id: str | None = Field(default=None, description="For CANCEL")
    plan_id: int | None = Field(default=None, strict=True,
                                description="For UPDATE_PLAN and CLOSE_PLAN")
    reason: str = Field(default="", max_length=2000)
    confidence: float | None = Field(default=None, strict=True, ge=0, le=1)


class Decision(BaseModel):
    actions: list[Action] = Field(default_factory=list)
    summary: str = Field(default="", max_length=4000)

    def stored_json(self) -> str:
        """The decision as a trace stores it: compact, each fact once. Fields at their
        default are left out, and so is an action's reason when it is the summary (a lone
        HOLD's usually is); any other reason is written, even an empty one, so that
        ``from_stored`` reads the same decision back."""
        stored = self.model_dump(mode="json", exclude_defaults=True)
        for action, item in zip(self.actions, stored.get("actions", []), strict=True):
            if action.reason == self.summary:
                item.pop("reason", None)
            else:
                item["reason"] = action.reason
        return json.dumps(stored, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_stored(cls, text: str) -> Decision:
        """The decision a trace stored, whether ``stored_json`` wrote it or it was written
        before with every field but the None ones (each action then has its reason)."""
        stored = json.loads(text)
        summary = stored.get("summary", "")
        for item in stored.get("actions", []):
            item.setdefault("reason", summary)
        return cls.model_validate(stored)


HOLD = Decision(actions=[Action(action=ActionType.HOLD, reason="no decision")])
