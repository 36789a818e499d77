"""The Anthropic adapter: the Messages API through the official ``anthropic`` SDK.

The decision is structured output by tool use: a ``decide`` tool whose input schema is
``Decision``. A round with the read-only tools offers them beside ``decide`` and requires
one of them (``tool_choice: any``); the last round offers ``decide`` alone and requires it.
An answer in text instead is parsed as JSON, as for any provider. ``LLM_BASE_URL`` (else the
SDK's own ``ANTHROPIC_BASE_URL``) is honoured. The SDK takes no temperature (the current
models fix their own sampling), so the trace records none.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
from anthropic.types import Message

from bot.config import Settings
from bot.engine.base import EngineResult
from bot.engine.llm import RETRYABLE, Reply, ToolCall, is_transport_error
from bot.engine.recording import request_hash
from bot.engine.schema import Decision
from bot.engine.tools import TOOLS

DECIDE = "decide"
OVERLOADED = 529  # Anthropic's "overloaded": worth another attempt


class AnthropicAdapter:
    provider = "anthropic"
    combined = True  # the decide tool rides with the read-only ones
    temperature: float | None = None  # the SDK takes none: the model's own sampling applies

    def __init__(self, settings: Settings, client: anthropic.Anthropic | None = None) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self._client = client
        self._system = ""

    def start(self, system: str, user: str) -> list[dict[str, Any]]:
        self._system = system
        return [{"role": "user", "content": user}]

    def request(self, conversation: list[dict[str, Any]], *, tools: bool,
                schema: bool) -> dict[str, Any]:
        offered = [{"name": tool.name, "description": tool.description,
                    "input_schema": tool.parameters} for tool in TOOLS] if tools else []
        if schema:
            offered.append({"name": DECIDE, "input_schema": Decision.model_json_schema(),
                            "description": "Give the decision: the actions and a summary."})
        request: dict[str, Any] = {
            "model": self.model, "max_tokens": self.settings.llm_max_output_tokens,
            "system": self._system,
            "messages": list(conversation)}
        if offered:
            request["tools"] = offered
            request["tool_choice"] = {"type": "tool", "name": DECIDE} if schema and not tools \
                else {"type": "any" if schema else "auto"}
        return request

    def key(self, request: dict[str, Any]) -> str:
        # Where the server lives is no part of the question: a day recorded against one
        # host replays anywhere.
        return request_hash({"provider": self.provider, **request},
                            self.settings.secret_values())

    def send(self, request: dict[str, Any]) -> Message:
        return self._api().messages.create(**request)

    def load(self, data: dict[str, Any]) -> Message:
        return Message.model_validate(data)

    def reply(self, response: Message) -> Reply:
        usage = response.usage
        # Anthropic's input_tokens leaves out the cache's writes and reads; ours counts them
        written, read = usage.cache_creation_input_tokens or 0, usage.cache_read_input_tokens or 0
        reply = Reply(model_version=response.model, tokens_out=usage.output_tokens,
                      tokens_in=usage.input_tokens + written + read,
                      cache_write_tokens=written, cache_read_tokens=read)
        text = "".join(block.text for block in response.content if block.type == "text")
        uses = [block for block in response.content if block.type == "tool_use"]
        decided = [block for block in uses if block.name == DECIDE]
        if decided:  # the decision wins over any tool asked beside it
            reply.text = json.dumps(decided[0].input)
        else:
            reply.text = text or None
            reply.calls = [ToolCall(block.id, block.name,
                                    block.input if isinstance(block.input, dict) else {})
                           for block in uses]
        if response.stop_reason == "refusal":
            reply.refusal = text or "refused"
        elif response.stop_reason not in ("end_turn", "tool_use", "stop_sequence", None):
            reply.errors.append(f"stop reason {response.stop_reason}")
        return reply

    def add_tool_results(self, conversation: list[dict[str, Any]], response: Message,
                         results: list[tuple[ToolCall, dict[str, Any]]]) -> None:
        conversation.append({"role": "assistant", "content": [
            block.model_dump(mode="json", exclude_none=True) for block in response.content]})
        conversation.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": json.dumps(output)}
            for call, output in results]})

    def add_user(self, conversation: list[dict[str, Any]], text: str) -> None:
        conversation.append({"role": "user", "content": text})

    def retry_reason(self, exc: Exception) -> str | None:
        if isinstance(exc, anthropic.APIStatusError):
            code = exc.status_code
            return f"HTTP {code}" if code in RETRYABLE or code == OVERLOADED else None
        return type(exc).__name__ if is_transport_error(exc) else None

    def adapt(self, exc: Exception, request: dict[str, Any],
              result: EngineResult) -> dict[str, Any] | None:
        return None

    def _api(self) -> anthropic.Anthropic:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client


def make_client(settings: Settings) -> anthropic.Anthropic:
    """The SDK client: LLM_BASE_URL (else ANTHROPIC_BASE_URL), LLM_API_KEY (else
    ANTHROPIC_API_KEY), our timeout, and no retries of its own: the engine core bounds them."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return anthropic.Anthropic(api_key=key, base_url=settings.llm_base_url,
                               timeout=settings.llm_timeout_seconds, max_retries=0)
