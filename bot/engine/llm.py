"""The LLM engine core: one bounded conversation per decision, whatever the provider.

The prompt, the ``Decision`` schema, the read-only tools and their bounded rounds, retries,
the minimum interval between calls, the session cost cap, pricing and the recording of
answers live here; a provider adapter (``gemini``, ``openai_chat``, ``anthropic_messages``)
only turns a conversation into its SDK's request and the SDK's response into a ``Reply``.
The SDKs' automatic tool execution and their own retries are off, so this loop bounds the
rounds and the attempts and records every call for the trace.

A blocked call (minimum interval, cost cap) is a HOLD marked ``skipped``, so the loop still
manages its plans. Any failure (HTTP, malformed body, refusal, unparseable JSON) is a HOLD
with the errors: the engine never raises into the loop, and the validation and the risk
layer see nothing the schema did not accept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from bot.config import ConfigError, Settings
from bot.engine.base import EngineResult
from bot.engine.pricing import price_for
from bot.engine.prompt import PROMPT_VERSION, render_prompt
from bot.engine.recording import Recording
from bot.engine.schema import Decision
from bot.engine.tools import answer_tool
from bot.engine.validation import hold, parse_decision
from bot.model.decision import DecisionContext
from bot.secrets_filter import scrub

MAX_ROUNDS = 3
# Tool answers with data per decision: each goes back with every later request and is paid
# for as its input; calls beyond are answered with an error (each call needs an answer).
MAX_TOOL_CALLS = 8
MAX_ATTEMPTS = 4  # per request: the first try and three retries
BACKOFF_SECONDS = 1.0  # doubled per retry
MAX_BACKOFF_SECONDS = 20.0
RETRYABLE = {408, 429, 500, 502, 503, 504}
ANSWER_NOW = "Answer now with the JSON decision only."


@dataclass
class ToolCall:
    id: str | None
    name: str
    args: dict[str, Any]


@dataclass
class Reply:
    """One response, provider-neutral: its text or its tool calls, and what it cost."""

    text: str | None = None
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # refusal, block, cut-off answer
    tokens_in: int = 0  # every input token, the prompt cache's writes and reads among them
    tokens_out: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    model_version: str | None = None
    refusal: str | None = None  # the model declined to answer: never acted on


class Adapter(Protocol):
    """What a provider contributes; a conversation is the adapter's own list of turns."""

    provider: str
    model: str
    temperature: float | None  # as sent; None where the API takes none
    # accepts tools and the JSON schema in one request; else the tools come alone and an
    # answer that does not parse is asked once more under the schema
    combined: bool

    def start(self, system: str, user: str) -> Any: ...

    def request(self, conversation: Any, *, tools: bool, schema: bool) -> Any: ...

    def key(self, request: Any) -> str: ...

    def send(self, request: Any) -> BaseModel: ...

    def load(self, data: dict[str, Any]) -> BaseModel: ...

    def reply(self, response: Any) -> Reply: ...

    def add_tool_results(self, conversation: Any, response: Any,
                         results: list[tuple[ToolCall, dict[str, Any]]]) -> None: ...

    def add_user(self, conversation: Any, text: str) -> None: ...

    def retry_reason(self, exc: Exception) -> str | None:
        """Why ``exc`` is worth another attempt (``HTTP 429``), or None."""
        ...

    def adapt(self, exc: Exception, request: Any, result: EngineResult) -> Any | None:
        """A changed request to send at once when ``exc`` says the endpoint refuses a
        feature (a schema with tools, a JSON schema at all); None otherwise."""
        ...


def is_transport_error(exc: Exception) -> bool:
    """Timeouts and connection errors of any httpx generation or SDK, by class name."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "NetworkError",
                         "APIConnectionError", "APITimeoutError"})


class LLMEngine:
    def __init__(
        self,
        settings: Settings,
        adapter: Adapter,
        *,
        tools: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        recording: Recording | None = None,
    ) -> None:
        self.settings = settings
        self.adapter = adapter
        self.name = adapter.provider
        self.model = adapter.model
        self.tools = tools
        self._sleep = sleep
        self.recording = recording
        self._last_call: datetime | None = None
        self._spent: dict[int, float] = {}
        # priced once, at startup: a bad LLM_PRICES_JSON is a setting error, not a crash of
        # every decision
        try:
            self.price = price_for(self.model, self.name, base_url=settings.llm_base_url,
                                   local=settings.llm_is_local)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    # ------------------------------------------------------------------ public
    def decide(self, context: DecisionContext) -> EngineResult:
        blocked = self._blocked(context)
        if blocked:
            return EngineResult(decision=hold(f"LLM call skipped: {blocked}"), engine=self.name,
                                model=self.model, skipped=blocked)
        self._last_call = context.now
        started = time.perf_counter()
        prompt = render_prompt(context, self.settings, tools=self.tools)
        result = EngineResult(decision=hold("no decision"), engine=self.name, model=self.model,
                              prompt=prompt.text, prompt_system=prompt.system,
                              provider=self.name,
                              temperature=self.adapter.temperature,
                              prompt_version=PROMPT_VERSION, price_source=self.price.source)
        if prompt.cut:
            result.notes.append("prompt cut to fit the budget: " + "; ".join(prompt.cut))
        try:
            result.decision = self._converse(context, prompt.system, prompt.user, result)
        except Exception as exc:  # the loop must get a HOLD, never an exception
            result.decision = hold("LLM call failed")
            result.errors.append(scrub(f"{type(exc).__name__}: {exc}",
                                       self.settings.secret_values())[:1000])
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.cost = self.price.cost(result.tokens_in, result.tokens_out,
                                      result.cache_write_tokens, result.cache_read_tokens)
        self._spent[context.session_id] = self._spent.get(context.session_id, 0.0) + result.cost
        return result

    # ------------------------------------------------------------------ gates
    def _blocked(self, context: DecisionContext) -> str | None:
        interval = self.settings.llm_min_interval_seconds
        if self._last_call is not None:
            elapsed = (context.now - self._last_call).total_seconds()
            if elapsed < interval:
                return f"min interval: {elapsed:.0f}s of {interval:.0f}s since the last call"
        spent = max(float(context.stats.get("total_llm_cost") or 0.0),
                    self._spent.get(context.session_id, 0.0))
        if spent >= self.settings.llm_session_cost_cap:
            return (f"session LLM cost cap reached: ${spent:.4f} of "
                    f"${self.settings.llm_session_cost_cap:.2f}")
        return None

    # ------------------------------------------------------------------ conversation
    def _converse(self, context: DecisionContext, system: str, user: str,
                  result: EngineResult) -> Decision:
        adapter = self.adapter
        conversation = adapter.start(system, user)
        for round_no in range(1, MAX_ROUNDS + 1):
            last_round = round_no == MAX_ROUNDS
            use_tools = self.tools and not last_round
            schema = adapter.combined or not use_tools
            response, reply = self._ask(conversation, use_tools, schema, result)
            if reply.calls and use_tools:
                results = []
                for call in reply.calls:
                    if len(result.tool_calls) < MAX_TOOL_CALLS:
                        output = answer_tool(context, call.name, call.args)
                    else:
                        output = {"error": f"at most {MAX_TOOL_CALLS} tool calls a decision: "
                                           "not answered; decide with what you have"}
                    result.tool_calls.append({"round": round_no, "name": call.name,
                                              "args": call.args, "result": output})
                    results.append((call, output))
                adapter.add_tool_results(conversation, response, results)
                continue
            decision, errors, notes = _answer(reply, result)
            if schema or last_round or not errors:
                result.errors.extend(errors)
                result.notes.extend(notes)
                return decision
            # Split mode: the free-form answer did not parse; ask once more under the schema.
            # The trace's status is the second answer's: the first's failure is a note.
            result.notes.extend(f"answer 1: {error}" for error in [*errors, *notes])
            adapter.add_user(conversation, ANSWER_NOW)
            _, reply = self._ask(conversation, False, True, result)
            decision, errors, notes = _answer(reply, result)
            result.errors.extend(f"answer 2: {error}" for error in errors)
            result.notes.extend(f"answer 2: {note}" for note in notes)
            # A second answer that does not parse either is not half-trusted: whatever
            # actions did parse of it are not acted on.
            return hold("no usable answer after a retry") if errors else decision
        return hold("no decision")

    def _ask(self, conversation: Any, use_tools: bool, schema: bool,
             result: EngineResult) -> tuple[Any, Reply]:
        """One request with bounded retries on rate limits, 5xx and transport errors.

        With a recording, an answered request is served from it and a new answer is added.
        The first request's hash goes on the trace: it names what this decision asked.
        """
        adapter = self.adapter
        request = adapter.request(conversation, tools=use_tools, schema=schema)
        key = adapter.key(request)
        result.request_hash = result.request_hash or key
        if self.recording is not None:
            recorded = self.recording.get(key)
            if recorded is not None:
                response = adapter.load(recorded)
                return response, _counted(adapter.reply(response), result)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = adapter.send(request)
                reply = _counted(adapter.reply(response), result)
                if self.recording is not None:
                    self.recording.put(key, response, self.settings.secret_values())
                return response, reply
            except Exception as exc:
                changed = adapter.adapt(exc, request, result)
                if changed is not None:
                    request = changed
                    continue
                reason = adapter.retry_reason(exc)
                if reason is None or attempt == MAX_ATTEMPTS:
                    raise
                result.notes.append(f"attempt {attempt}: {reason}, retrying")
            self._sleep(min(BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
        raise RuntimeError("unreachable: retries exhausted without an answer")


def _counted(reply: Reply, result: EngineResult) -> Reply:
    result.tokens_in += reply.tokens_in
    result.tokens_out += reply.tokens_out
    result.cache_write_tokens += reply.cache_write_tokens
    result.cache_read_tokens += reply.cache_read_tokens
    if reply.model_version:
        result.model_version = reply.model_version
    return reply


def _answer(reply: Reply, result: EngineResult) -> tuple[Decision, list[str], list[str]]:
    """The answer's decision, its errors (none: it parsed cleanly) and its notes; the answer
    joins ``result.answers``, so one asked again is still on the trace. An answer the
    provider marks blocked or cut short is not acted on, though what came of it may parse."""
    notes: list[str] = []
    if reply.refusal is not None:
        decision, parse_errors = hold("the model refused"), [f"refused: {reply.refusal}"]
    elif reply.errors:
        decision, parse_errors = hold("the answer was blocked or cut short"), []
    else:
        decision, parse_errors, notes = parse_decision(reply.text)
    errors = [*reply.errors, *parse_errors]
    result.raw_response = reply.text
    result.answers.append({"raw_response": reply.text, "errors": [*errors, *notes]})
    return decision, errors, notes
