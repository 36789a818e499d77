"""The Gemini adapter: the engine core's conversation through google-genai.

Gemini 2.5 rejects a request carrying both function declarations and a JSON response type,
while Gemini 3 accepts it. Models that accept it get both in every request; the others get
the tools alone and, if their answer then does not parse, one last request with the schema
and no tools. A 400 naming the combination switches a model to the split mode for good.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from bot.config import Settings
from bot.engine.base import EngineResult
from bot.engine.llm import RETRYABLE, LLMEngine, Reply, ToolCall, is_transport_error
from bot.engine.recording import Recording, request_hash
from bot.engine.schema import Decision
from bot.engine.tools import TOOLS

COMBINED_PREFIXES = ("gemini-3",)  # models known to accept tools with a JSON schema

__all__ = ["GeminiAdapter", "GeminiEngine", "Recording"]


def _schema(spec: dict[str, Any]) -> types.Schema:
    """A JSON schema of the tools' simple shapes as google-genai's own Schema."""
    return types.Schema(
        type=types.Type(spec["type"].upper()), description=spec.get("description"),
        required=spec.get("required"),
        properties={k: _schema(v) for k, v in spec["properties"].items()}
        if "properties" in spec else None)


def tool_declarations() -> list[types.FunctionDeclaration]:
    return [types.FunctionDeclaration(name=tool.name, description=tool.description,
                                      parameters=_schema(tool.parameters)) for tool in TOOLS]


class GeminiAdapter:
    provider = "gemini"

    def __init__(self, settings: Settings, client: genai.Client | None = None) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self.temperature: float | None = settings.llm_temperature
        # Built on first use: a replay served wholly from a recording never opens one.
        self._client = client
        self.combined = self.model.removeprefix("models/").startswith(COMBINED_PREFIXES)
        self._system = ""

    def start(self, system: str, user: str) -> list[types.Content]:
        self._system = system
        return [types.Content(role="user", parts=[types.Part(text=user)])]

    def request(self, conversation: list[types.Content], *, tools: bool,
                schema: bool) -> tuple[list[types.Content], types.GenerateContentConfig]:
        config = types.GenerateContentConfig(
            system_instruction=self._system,
            temperature=self.temperature,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        if schema:
            config.response_mime_type = "application/json"
            config.response_schema = Decision
        if tools:
            config.tools = [types.Tool(function_declarations=tool_declarations())]
        return list(conversation), config

    def key(self, request: tuple[list[types.Content], types.GenerateContentConfig]) -> str:
        contents, config = request
        return request_hash({
            "model": self.model,
            "system": config.system_instruction,
            "contents": [c.model_dump(mode="json", exclude_none=True) for c in contents],
            "tools": bool(config.tools),
            "schema": config.response_mime_type,
        }, self.settings.secret_values())

    def send(self, request: tuple[list[types.Content], types.GenerateContentConfig]
             ) -> types.GenerateContentResponse:
        contents, config = request
        return self._api().models.generate_content(model=self.model, contents=contents,
                                                   config=config)

    def load(self, data: dict[str, Any]) -> types.GenerateContentResponse:
        return types.GenerateContentResponse.model_validate(data)

    def reply(self, response: types.GenerateContentResponse) -> Reply:
        """Thinking tokens are billed as output and tool-use prompt tokens as input; the
        prompt count includes the cached content, which is billed at the cache-read rate
        (its storage is billed by the hour, outside any one call)."""
        usage = response.usage_metadata
        reply = Reply(model_version=response.model_version)
        if usage is not None:
            reply.tokens_in = (usage.prompt_token_count or 0) + \
                (usage.tool_use_prompt_token_count or 0)
            reply.cache_read_tokens = usage.cached_content_token_count or 0
            reply.tokens_out = (usage.candidates_token_count or 0) + \
                (usage.thoughts_token_count or 0)
        reply.calls = [ToolCall(call.id, call.name or "", dict(call.args or {}))
                       for call in response.function_calls or []]
        if not response.candidates:  # a blocked prompt: no text at all
            feedback = response.prompt_feedback
            reason = feedback.block_reason if feedback else None
            reply.errors.append(f"no candidates in the response (block reason: {reason})")
            return reply
        candidate = response.candidates[0]
        parts = candidate.content.parts if candidate.content else None
        reply.text = "".join(p.text for p in parts or [] if p.text and not p.thought)
        if candidate.finish_reason not in (None, types.FinishReason.STOP):
            reply.errors.append(f"finish reason {candidate.finish_reason}")
        return reply

    def add_tool_results(self, conversation: list[types.Content],
                         response: types.GenerateContentResponse,
                         results: list[tuple[ToolCall, dict[str, Any]]]) -> None:
        if response.candidates and response.candidates[0].content:
            conversation.append(response.candidates[0].content)
        else:
            conversation.append(types.Content(role="model", parts=[
                types.Part(function_call=call) for call in response.function_calls or []]))
        conversation.append(types.Content(role="user", parts=[
            types.Part(function_response=types.FunctionResponse(
                id=call.id, name=call.name, response=output)) for call, output in results]))

    def add_user(self, conversation: list[types.Content], text: str) -> None:
        conversation.append(types.Content(role="user", parts=[types.Part(text=text)]))

    def retry_reason(self, exc: Exception) -> str | None:
        if isinstance(exc, genai_errors.APIError):
            return f"HTTP {exc.code}" if exc.code in RETRYABLE else None
        return type(exc).__name__ if is_transport_error(exc) else None

    def adapt(self, exc: Exception, request: tuple[list[types.Content],
                                                   types.GenerateContentConfig],
              result: EngineResult) -> tuple[list[types.Content],
                                             types.GenerateContentConfig] | None:
        contents, config = request
        if isinstance(exc, genai_errors.APIError) and exc.code == 400 and config.tools and \
                config.response_mime_type and "mime type" in str(exc).lower():
            # This model refuses tools with a schema: split them from now on.
            self.combined = False
            result.notes.append("model refuses tools with a JSON schema: split mode")
            return contents, config.model_copy(update={"response_mime_type": None,
                                                       "response_schema": None})
        return None

    def _api(self) -> genai.Client:
        if self._client is None:
            self._client = _make_client(self.settings)
        return self._client


class GeminiEngine(LLMEngine):
    def __init__(
        self,
        settings: Settings,
        client: genai.Client | None = None,
        *,
        tools: bool = True,
        sleep: Callable[[float], None] | None = None,
        recording: Recording | None = None,
    ) -> None:
        extra = {"sleep": sleep} if sleep is not None else {}
        super().__init__(settings, GeminiAdapter(settings, client), tools=tools,
                         recording=recording, **extra)


def _make_client(settings: Settings) -> genai.Client:
    """The SDK client; the base URL is LLM_BASE_URL if set, else the SDK's own (so
    GOOGLE_GEMINI_BASE_URL works)."""
    secret = settings.gemini_api_key or settings.llm_api_key
    key = secret.get_secret_value() if secret else None
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        timeout=int(settings.llm_timeout_seconds * 1000), base_url=settings.llm_base_url))
