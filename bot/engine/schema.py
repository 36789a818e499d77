"""The decision schema: one pydantic model for every engine and the LLM's structured output.

Parsing is lenient about shape (a response that does not parse becomes a HOLD) and strict
about meaning: ``validate_action`` checks each action against what the bot knows and drops
what fails, with the reason, so nothing unchecked ever reaches the risk layer.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator


class ActionType(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"
    CANCEL = "CANCEL"
    UPDATE_PLAN = "UPDATE_PLAN"
    CLOSE_PLAN = "CLOSE_PLAN"


class Action(BaseModel):
    action: ActionType
    symbol: str | None = None
    size: float | None = Field(default=None, description="Base-currency amount")
    quote_value: float | None = Field(default=None, description="Or: amount in quote currency")
    order_type: str = Field(default="market", description="market or limit")
    price: float | None = Field(default=None, description="Limit price (entry)")
    stop: float | None = None
    target: float | None = None
    order_id: str | None = Field(default=None, description="For CANCEL")
    plan_id: int | None = Field(default=None, description="For UPDATE_PLAN and CLOSE_PLAN")
    reason: str = Field(default="", max_length=2000)
    confidence: float | None = Field(default=None, ge=0, le=1)

    @field_validator("size", "quote_value", "price", "stop", "target", "plan_id", "confidence",
                     mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        """pydantic reads ``true`` as 1: a plan_id of true would name plan 1 and a size of
        true buy one coin, neither of which the model wrote."""
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        return value


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
