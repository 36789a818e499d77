"""The decision-engine contract shared by the rules engine and the LLMs.

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
    # the system part ``prompt`` begins with, the same at every decision: stored once
    prompt_system: str = ""
    raw_response: str | None = None  # the answer the decision was taken from
    # Every text answer the model gave, in order, each as {"raw_response", "errors"}: an
    # answer asked again is kept beside the one that replaced it.
    answers: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # what refuses nothing (a field dropped from an action that goes all the same, the
    # prompt cut to the budget, an attempt retried, a feature the endpoint refuses worked
    # around): traced beside the errors, but the decision is not "rejected" for it
    notes: list[str] = field(default_factory=list)
    tokens_in: int = 0  # every input token, the prompt cache's writes and reads among them
    tokens_out: int = 0
    cache_write_tokens: int = 0  # priced at their own rates (``bot.engine.pricing``)
    cache_read_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    skipped: str | None = None  # why no call was made (min interval, cost cap)
    # What makes a trace reproducible: who answered, as which model version, at which
    # temperature, from which prompt template, and the hash of the first request.
    provider: str | None = None
    model_version: str | None = None
    temperature: float | None = None
    prompt_version: str | None = None
    request_hash: str | None = None
    price_source: str | None = None  # "local" for a model that costs nothing


class DecisionEngine(Protocol):
    name: str

    def decide(self, context: DecisionContext) -> EngineResult: ...
