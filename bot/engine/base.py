"""The decision-engine contract shared by the rules engine and Gemini.

An engine reads a ``DecisionContext`` (``bot.model.decision``: what the bot knew at the
instant, never the future; ``bot.decision_context`` builds it) and returns an
``EngineResult``: the parsed decision plus everything the trace must show. It never places
orders; the risk layer and the executor do that with what survives validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.engine.schema import Decision
from bot.model.decision import DecisionContext


@dataclass
class EngineResult:
    decision: Decision
    engine: str
    model: str | None = None
    prompt: str = ""
    raw_response: str | None = None  # the answer the decision was taken from
    # Every text answer the model gave, in order, each as {"raw_response", "errors"}: an
    # answer asked again is kept beside the one that replaced it.
    answers: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    skipped: str | None = None  # why no call was made (min interval, cost cap)


class DecisionEngine(Protocol):
    name: str

    def decide(self, context: DecisionContext) -> EngineResult: ...
