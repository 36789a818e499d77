"""A trace keeps the prompt-cache tokens its cost was priced from.

The cost of a call with cache writes and reads is priced at their own rates, but the trace
kept only the input and output counts: the Decisions page showed a cost its token counts
could not explain. The real ``anthropic`` and ``openai`` SDKs read the recorded bodies; the
loop, the paper venue and the store are real.
"""

from __future__ import annotations

import anthropic
import httpx2
import openai
from sqlalchemy import select

from bot.config import load_settings
from bot.engine.anthropic_messages import AnthropicAdapter
from bot.engine.llm import LLMEngine
from bot.engine.openai_chat import OpenAIChatAdapter
from db.models import LLMTrace
from db.queries_trading import trace_detail
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.recorded_http import RecordedAnswers, fixture
from tests.test_plans import LOOSE, SYMBOL


def _anthropic() -> LLMEngine:
    recorded = RecordedAnswers((200, fixture("anthropic", "cached_prompt.json")), http=httpx2)
    settings = load_settings(LLM_PROVIDER="anthropic", LLM_API_KEY="sk-ant-test-123",
                             LLM_MIN_INTERVAL_SECONDS=3600, SYMBOLS=SYMBOL)
    client = anthropic.Anthropic(api_key="sk-ant-test-123", base_url=settings.llm_base_url,
                                 max_retries=0, http_client=recorded.client())
    return LLMEngine(settings, AnthropicAdapter(settings, client), sleep=lambda _s: None)


def _openai() -> LLMEngine:
    recorded = RecordedAnswers((200, fixture("openai", "cached_prompt.json")))
    settings = load_settings(LLM_PROVIDER="openai", LLM_API_KEY="sk-test-key-123",
                             LLM_MIN_INTERVAL_SECONDS=3600, SYMBOLS=SYMBOL)
    client = openai.OpenAI(api_key="sk-test-key-123", base_url=settings.llm_base_url,
                           max_retries=0, http_client=recorded.client())
    return LLMEngine(settings, OpenAIChatAdapter(settings, client), sleep=lambda _s: None)


def _traced(sqlite_url, tmp_path, engine: LLMEngine) -> LLMTrace:
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 12)
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([]), **LOOSE)
    step(rt, 1)
    rt.engine = engine
    step(rt, 1)
    with rt.db() as db:
        trace = db.scalars(select(LLMTrace).where(LLMTrace.engine == engine.name)).one()
        detail = trace_detail(db, trace.id)
    assert detail is not None
    assert (detail["cache_read_tokens"], detail["cache_write_tokens"]) == (
        trace.cache_read_tokens, trace.cache_write_tokens)
    return trace


def test_anthropic_cache_writes_and_reads_are_kept_on_the_trace(sqlite_url, tmp_path) -> None:
    trace = _traced(sqlite_url, tmp_path, _anthropic())
    assert (trace.tokens_in, trace.tokens_out) == (851 + 2000 + 10000, 142)
    assert (trace.cache_write_tokens, trace.cache_read_tokens) == (2000, 10000)


def test_openai_cache_reads_are_kept_on_the_trace(sqlite_url, tmp_path) -> None:
    trace = _traced(sqlite_url, tmp_path, _openai())
    assert (trace.tokens_in, trace.cache_write_tokens, trace.cache_read_tokens) == (
        12298, 0, 10240)
