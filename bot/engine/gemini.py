"""The Gemini engine: one bounded conversation per decision through google-genai.

The model answers with JSON constrained by the ``Decision`` schema. It may first call
read-only tools (more candles, the top of the book, indicator history); the SDK's automatic
function calling is off so that our loop bounds the rounds, the size of each tool result
and records every call for the trace. Calls are rate-limited (minimum interval) and capped
by session cost; a blocked call is a HOLD marked ``skipped`` so the loop still manages its
plans. Any failure (HTTP, malformed body, unparseable JSON) is a HOLD with the errors:
the engine never raises into the loop.

Gemini 2.5 rejects a request carrying both function declarations and a JSON response type,
while Gemini 3 accepts it. Models that accept it get both in every request; the others get
the tools alone and, if their answer then does not parse, one last request with the schema
and no tools. A 400 naming the combination switches a model to the split mode for good.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from bot.config import Settings
from bot.engine import indicators
from bot.engine.base import EngineResult
from bot.engine.pricing import cost_usd
from bot.engine.prompt import render_prompt
from bot.engine.schema import Decision
from bot.engine.validation import hold, parse_decision
from bot.model.decision import DecisionContext
from bot.secrets_filter import scrub

MAX_ROUNDS = 3
MAX_ATTEMPTS = 4  # per request: the first try and three retries
BACKOFF_SECONDS = 1.0  # doubled per retry
MAX_BACKOFF_SECONDS = 20.0
TOOL_MAX_ROWS = 100
TOOL_MAX_BYTES = 8000
RETRYABLE = {408, 429, 500, 502, 503, 504}
COMBINED_PREFIXES = ("gemini-3",)  # models known to accept tools with a JSON schema


def tool_declarations() -> list[types.FunctionDeclaration]:
    symbol = types.Schema(type=types.Type.STRING, description="A configured symbol, BTC/USDT")
    timeframe = types.Schema(type=types.Type.STRING, description="A configured timeframe, 5m")
    return [
        types.FunctionDeclaration(
            name="get_candles",
            description="More closed candles (newest last) for a symbol and timeframe.",
            parameters=types.Schema(type=types.Type.OBJECT, required=["symbol", "timeframe"],
                                    properties={"symbol": symbol, "timeframe": timeframe,
                                                "limit": types.Schema(type=types.Type.INTEGER,
                                                                      description="max 100")}),
        ),
        types.FunctionDeclaration(
            name="get_order_book",
            description="Top of the order book: bid, ask, spread and imbalance.",
            parameters=types.Schema(type=types.Type.OBJECT, required=["symbol"],
                                    properties={"symbol": symbol}),
        ),
        types.FunctionDeclaration(
            name="get_indicators",
            description="Recent indicator values (EMA, RSI, MACD, Bollinger, ATR), newest last.",
            parameters=types.Schema(type=types.Type.OBJECT, required=["symbol", "timeframe"],
                                    properties={"symbol": symbol, "timeframe": timeframe}),
        ),
    ]


class Recording:
    """generateContent answers kept by a hash of the request, in a JSON Lines file.

    A replay with an LLM costs money once: with a recording, a request already answered
    is served from the file (with its recorded usage, so the recorded cost is charged
    again and the replay's numbers match), and only new requests reach the API, their
    answers appended. The key is the request itself (model, system prompt, every turn,
    tools and schema flags), so a changed prompt never replays a stale answer. ``refresh``
    (``--record``) asks the API every time and appends what it answers. Lines are flushed
    one by one: a killed replay keeps every answer it paid for.
    """

    def __init__(self, path: Path, *, refresh: bool = False) -> None:
        self.path = Path(path)
        self.refresh = refresh
        self.hits = 0
        self.misses = 0
        self._answers: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            text = self.path.read_text(encoding="utf-8")
            lines = text.splitlines()
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    self._answers[entry["key"]] = entry["response"]
                except (ValueError, KeyError, TypeError) as exc:
                    if number == len(lines) and not text.endswith("\n"):
                        # The last line, cut by a kill while it was written: drop it, and
                        # its request is asked again.
                        with self.path.open("r+b") as handle:
                            handle.truncate(len(text.encode()) - len(line.encode()))
                        break
                    raise ValueError(f"{self.path}:{number}: not a recording line: {exc}") \
                        from exc

    @staticmethod
    def key(model: str, contents: list[types.Content],
            config: types.GenerateContentConfig) -> str:
        request = {
            "model": model,
            "system": config.system_instruction,
            "contents": [c.model_dump(mode="json", exclude_none=True) for c in contents],
            "tools": bool(config.tools),
            "schema": config.response_mime_type,
        }
        return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode())\
            .hexdigest()

    def get(self, key: str) -> types.GenerateContentResponse | None:
        if self.refresh or key not in self._answers:
            self.misses += 1
            return None
        self.hits += 1
        return types.GenerateContentResponse.model_validate(self._answers[key])

    def put(self, key: str, response: types.GenerateContentResponse) -> None:
        data = response.model_dump(mode="json", exclude_none=True,
                                   exclude={"sdk_http_response"})
        self._answers[key] = data
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"key": key, "response": data}, sort_keys=True) + "\n")
            out.flush()


class GeminiEngine:
    name = "gemini"

    def __init__(
        self,
        settings: Settings,
        client: genai.Client | None = None,
        *,
        tools: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        recording: Recording | None = None,
    ) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self.tools = tools
        self._sleep = sleep
        self.recording = recording
        # Built on first use: a replay served wholly from a recording never opens one.
        self._client = client
        self._last_call: datetime | None = None
        self._spent: dict[int, float] = {}
        self._combined = self.model.removeprefix("models/").startswith(COMBINED_PREFIXES)

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
                              prompt=prompt.text)
        if prompt.cut:
            result.errors.append("prompt cut to fit the budget: " + "; ".join(prompt.cut))
        try:
            result.decision = self._converse(context, prompt.system, prompt.user, result)
        except Exception as exc:  # the loop must get a HOLD, never an exception
            result.decision = hold("LLM call failed")
            result.errors.append(scrub(f"{type(exc).__name__}: {exc}", self.settings.secret_values())[:1000])
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.cost = cost_usd(self.model, result.tokens_in, result.tokens_out)
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
        contents: list[types.Content] = [types.Content(role="user",
                                                       parts=[types.Part(text=user)])]
        for round_no in range(1, MAX_ROUNDS + 1):
            last_round = round_no == MAX_ROUNDS
            use_tools = self.tools and not last_round
            schema = self._combined or not use_tools
            response = self._generate(contents, self._config(system, use_tools, schema), result)
            calls = response.function_calls or []
            if calls and use_tools:
                contents.append(_model_content(response))
                contents.append(types.Content(role="user", parts=[
                    self._run_tool(context, call, round_no, result) for call in calls]))
                continue
            decision, errors, parsed = _answer(response, result)
            if schema or last_round or parsed:
                result.errors.extend(errors)
                return decision
            # Split mode: the free-form answer did not parse; ask once more under the schema.
            result.errors.extend(f"answer 1: {error}" for error in errors)
            contents.append(types.Content(role="user", parts=[types.Part(
                text="Answer now with the JSON decision only.")]))
            response = self._generate(contents, self._config(system, False, True), result)
            decision, errors, parsed = _answer(response, result)
            result.errors.extend(f"answer 2: {error}" for error in errors)
            # A second answer that does not parse either is not half-trusted: whatever
            # actions did parse of it are not acted on.
            return decision if parsed else hold("no usable answer after a retry")
        return hold("no decision")

    def _config(self, system: str, use_tools: bool, schema: bool) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=0.2,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        if schema:
            config.response_mime_type = "application/json"
            config.response_schema = Decision
        if use_tools:
            config.tools = [types.Tool(function_declarations=tool_declarations())]
        return config

    def _generate(self, contents: list[types.Content], config: types.GenerateContentConfig,
                  result: EngineResult) -> types.GenerateContentResponse:
        """One request with bounded retries on rate limits, 5xx and transport errors.

        With a recording, an answered request is served from it and a new answer is added.
        """
        key = Recording.key(self.model, contents, config) if self.recording else None
        if self.recording is not None and key is not None:
            recorded = self.recording.get(key)
            if recorded is not None:
                _add_usage(recorded, result)
                return recorded
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._api().models.generate_content(
                    model=self.model, contents=contents, config=config)
                _add_usage(response, result)
                if self.recording is not None and key is not None:
                    self.recording.put(key, response)
                return response
            except genai_errors.APIError as exc:
                if exc.code == 400 and config.tools and config.response_mime_type and \
                        "mime type" in str(exc).lower():
                    # This model refuses tools with a schema: split them from now on.
                    self._combined = False
                    config = config.model_copy(update={"response_mime_type": None,
                                                       "response_schema": None})
                    result.errors.append("model refuses tools with a JSON schema: split mode")
                    continue
                if exc.code not in RETRYABLE or attempt == MAX_ATTEMPTS:
                    raise
                result.errors.append(f"attempt {attempt}: HTTP {exc.code}, retrying")
            except (OSError, TimeoutError) as exc:  # transport trouble
                if attempt == MAX_ATTEMPTS:
                    raise
                result.errors.append(f"attempt {attempt}: {type(exc).__name__}, retrying")
            except Exception as exc:
                if not _is_transport_error(exc) or attempt == MAX_ATTEMPTS:
                    raise
                result.errors.append(f"attempt {attempt}: {type(exc).__name__}, retrying")
            self._sleep(min(BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
        raise RuntimeError("unreachable: retries exhausted without an answer")

    def _api(self) -> genai.Client:
        if self._client is None:
            self._client = _make_client(self.settings)
        return self._client

    # ------------------------------------------------------------------ tools
    def _run_tool(self, context: DecisionContext, call: types.FunctionCall, round_no: int,
                  result: EngineResult) -> types.Part:
        args = dict(call.args or {})
        try:
            output = run_tool(context, call.name or "", args)
        except (KeyError, ValueError, TypeError) as exc:
            output = {"error": str(exc)[:300]}
        result.tool_calls.append({"round": round_no, "name": call.name, "args": args,
                                  "result": output})
        return types.Part(function_response=types.FunctionResponse(
            id=call.id, name=call.name, response=output))


def run_tool(context: DecisionContext, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Answer one tool call from the context alone: read-only, bounded, newest data kept."""
    symbol = str(args.get("symbol", ""))
    view = context.markets.get(symbol)
    if view is None:
        raise KeyError(f"unknown symbol {symbol!r}; known: {', '.join(context.markets)}")
    if name == "get_order_book":
        return {"symbol": symbol, "last": view.last, "bid": view.bid, "ask": view.ask,
                "spread_pct": view.spread_pct, "imbalance": view.ob_imbalance}
    timeframe = str(args.get("timeframe", ""))
    frame = view.candles.get(timeframe)
    if frame is None:
        raise KeyError(f"unknown timeframe {timeframe!r}; known: {', '.join(view.candles)}")
    if name == "get_candles":
        limit = _limit(args.get("limit"))
        rows = [[ts.isoformat(), o, h, lo, c, v] for ts, o, h, lo, c, v in
                frame.tail(limit).itertuples(index=False, name=None)]
        return _bounded({"symbol": symbol, "timeframe": timeframe,
                         "columns": ["time", "open", "high", "low", "close", "volume"]}, rows)
    if name == "get_indicators":
        table = indicators.compute(frame).tail(TOOL_MAX_ROWS)
        columns = ["close", *indicators.COLUMNS]
        rows = [[_clean(v) for v in row] for row in table[columns].itertuples(index=False)]
        return _bounded({"symbol": symbol, "timeframe": timeframe, "columns": columns}, rows)
    raise ValueError(f"unknown tool {name!r}")


def _limit(value: Any) -> int:
    try:
        return max(1, min(int(value), TOOL_MAX_ROWS))
    except (TypeError, ValueError):
        return 50


def _bounded(head: dict[str, Any], rows: list[list[Any]]) -> dict[str, Any]:
    """Drop the oldest rows until the JSON fits TOOL_MAX_BYTES; say how many went."""
    rows = rows[-TOOL_MAX_ROWS:]
    dropped = 0
    while rows and len(json.dumps({**head, "rows": rows})) > TOOL_MAX_BYTES:
        cut = max(1, len(rows) // 10)
        rows, dropped = rows[cut:], dropped + cut
    return {**head, "rows": rows, "omitted_oldest_rows": dropped}


def _clean(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{number:.6g}") if math.isfinite(number) else None


def _model_content(response: types.GenerateContentResponse) -> types.Content:
    if response.candidates and response.candidates[0].content:
        return response.candidates[0].content
    return types.Content(role="model", parts=[types.Part(function_call=call)
                                              for call in response.function_calls or []])


def _answer(response: types.GenerateContentResponse,
            result: EngineResult) -> tuple[Decision, list[str], bool]:
    """The answer's decision, its errors and whether it parsed cleanly; the answer joins
    ``result.answers``, so one asked again is still on the trace."""
    text, errors = _response_text(response)
    decision, parse_errors = parse_decision(text)
    errors += parse_errors
    result.raw_response = text
    result.answers.append({"raw_response": text, "errors": errors})
    return decision, errors, not parse_errors


def _response_text(response: types.GenerateContentResponse) -> tuple[str | None, list[str]]:
    """The answer's text and what is wrong with the response; no candidate at all (a
    blocked prompt) is an error and no text."""
    if not response.candidates:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback else None
        return None, [f"no candidates in the response (block reason: {reason})"]
    parts = response.candidates[0].content.parts if response.candidates[0].content else None
    text = "".join(p.text for p in parts or [] if p.text and not p.thought)
    if response.candidates[0].finish_reason not in (None, types.FinishReason.STOP):
        return text, [f"finish reason {response.candidates[0].finish_reason}"]
    return text, []


def _add_usage(response: types.GenerateContentResponse, result: EngineResult) -> None:
    """Thinking tokens are billed as output and tool-use prompt tokens as input."""
    usage = response.usage_metadata
    if usage is None:
        return
    result.tokens_in += (usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0)
    result.tokens_out += (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    if response.model_version:
        result.model = response.model_version


def _is_transport_error(exc: Exception) -> bool:
    """httpx2's timeouts and connection errors, without importing its private layout."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "NetworkError"})


def _make_client(settings: Settings) -> genai.Client:
    """The SDK client; the base URL stays the SDK's own, so GOOGLE_GEMINI_BASE_URL works."""
    key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else None
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        timeout=int(settings.llm_timeout_seconds * 1000)))
