"""The OpenAI-compatible adapter: chat completions through the official ``openai`` SDK.

``LLM_BASE_URL`` points it at any server speaking that API (Ollama, vLLM, LM Studio,
OpenRouter); a local one needs no key. The decision comes back under a JSON schema
(``response_format`` ``json_schema``); a server that refuses a schema gets JSON mode
(``json_object``) from then on; one that refuses tools (many local models) or a
temperature (reasoning models) gets none, each named on the trace. Either way the answer
is validated against ``Decision``.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from bot.config import Settings
from bot.engine.base import EngineResult
from bot.engine.llm import RETRYABLE, Reply, ToolCall, is_transport_error
from bot.engine.recording import request_hash
from bot.engine.schema import Decision
from bot.engine.tools import TOOLS

NO_KEY = "no-key"  # the SDK insists on a key; a local server ignores it


def decision_schema() -> dict[str, Any]:
    return Decision.model_json_schema()


class OpenAIChatAdapter:
    provider = "openai"
    combined = True  # the API takes tools and a response format together

    def __init__(self, settings: Settings, client: openai.OpenAI | None = None) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self.temperature: float | None = settings.llm_temperature
        self._client = client
        self.json_mode = False  # the server refused a JSON schema
        self.no_tools = False  # the server (or its model) refused tools

    def start(self, system: str, user: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def request(self, conversation: list[dict[str, Any]], *, tools: bool,
                schema: bool) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": list(conversation)}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if tools and not self.no_tools:
            request["tools"] = [{"type": "function", "function": {
                "name": tool.name, "description": tool.description,
                "parameters": tool.parameters}} for tool in TOOLS]
        if schema:
            request["response_format"] = {"type": "json_object"} if self.json_mode else {
                "type": "json_schema",
                "json_schema": {"name": "decision", "schema": decision_schema()}}
        return request

    def key(self, request: dict[str, Any]) -> str:
        # Where the server lives is no part of the question: a day recorded against one
        # host replays anywhere.
        return request_hash({"provider": self.provider, **request},
                            self.settings.secret_values())

    def send(self, request: dict[str, Any]) -> ChatCompletion:
        return self._api().chat.completions.create(**request)

    def load(self, data: dict[str, Any]) -> ChatCompletion:
        return ChatCompletion.model_validate(data)

    def reply(self, response: ChatCompletion) -> Reply:
        reply = Reply(model_version=response.model)
        usage = response.usage
        if usage is not None:
            reply.tokens_in = usage.prompt_tokens  # the cache hits among them
            reply.tokens_out = usage.completion_tokens
            details = usage.prompt_tokens_details
            reply.cache_read_tokens = (details.cached_tokens or 0) if details else 0
        if not response.choices:
            reply.errors.append("no choices in the response")
            return reply
        choice = response.choices[0]
        message = choice.message
        reply.text = message.content
        if message.refusal:
            reply.refusal = message.refusal
        elif choice.finish_reason == "content_filter":
            reply.refusal = "stopped by the content filter"
        elif choice.finish_reason not in ("stop", "tool_calls", None):
            reply.errors.append(f"finish reason {choice.finish_reason}")
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is None:  # a custom tool call: none is declared
                continue
            try:
                args = json.loads(function.arguments or "{}")
            except ValueError:
                args = {}
            reply.calls.append(ToolCall(call.id, function.name,
                                        args if isinstance(args, dict) else {}))
        return reply

    def add_tool_results(self, conversation: list[dict[str, Any]], response: ChatCompletion,
                         results: list[tuple[ToolCall, dict[str, Any]]]) -> None:
        message = response.choices[0].message
        conversation.append({"role": "assistant", "content": message.content or "",
                             "tool_calls": [
                                 {"id": call.id, "type": "function",
                                  "function": {"name": call.name,
                                               "arguments": json.dumps(call.args)}}
                                 for call, _ in results]})
        conversation.extend({"role": "tool", "tool_call_id": call.id,
                             "content": json.dumps(output)} for call, output in results)

    def add_user(self, conversation: list[dict[str, Any]], text: str) -> None:
        conversation.append({"role": "user", "content": text})

    def retry_reason(self, exc: Exception) -> str | None:
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code}" if exc.status_code in RETRYABLE else None
        return type(exc).__name__ if is_transport_error(exc) else None

    def adapt(self, exc: Exception, request: dict[str, Any],
              result: EngineResult) -> dict[str, Any] | None:
        if not isinstance(exc, openai.BadRequestError):
            return None
        message = str(exc).lower()
        if "temperature" in request and "temperature" in message:
            # Reasoning models take only their default: send none from now on.
            self.temperature = result.temperature = None
            result.notes.append("the model refuses a temperature: sending none")
            return {k: v for k, v in request.items() if k != "temperature"}
        if "tools" in request and "support" in message and "tool" in message:
            self.no_tools = True
            result.notes.append("the endpoint refuses tools: deciding without them")
            return {k: v for k, v in request.items() if k != "tools"}
        schema = request.get("response_format", {}).get("type") == "json_schema"
        if schema and ("response_format" in message or "schema" in message):
            self.json_mode = True
            result.notes.append("the endpoint refuses a JSON schema: JSON mode")
            return {**request, "response_format": {"type": "json_object"}}
        return None

    def _api(self) -> openai.OpenAI:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client


def make_client(settings: Settings) -> openai.OpenAI:
    """The SDK client: LLM_BASE_URL (else the SDK's own, OPENAI_BASE_URL), LLM_API_KEY
    (else OPENAI_API_KEY, else a placeholder a local server ignores), our timeout, and no
    retries of its own: the engine core bounds them."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if key is None and settings.llm_base_url:
        key = NO_KEY
    return openai.OpenAI(api_key=key, base_url=settings.llm_base_url,
                         timeout=settings.llm_timeout_seconds, max_retries=0)
