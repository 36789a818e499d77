"""Pick the decision engine the settings name."""

from __future__ import annotations

from bot.config import Settings
from bot.engine.base import DecisionEngine
from bot.engine.recording import Recording


def build_engine(settings: Settings, recording: Recording | None = None) -> DecisionEngine:
    """The engine for ``settings.llm_provider``; a provider's SDK is imported only when
    chosen. An LLM without a ``recording`` given appends every answer to ``LLM_RECORDING``
    (``data/llm-answers/BOT_NAME.jsonl``), asking the API each time, so a live day can be
    replayed with the answers it got."""
    if settings.llm_provider == "rules":
        from bot.engine.rules import RulesEngine

        return RulesEngine(settings)
    from bot.engine.llm import LLMEngine

    if recording is None:
        recording = Recording(settings.llm_recording_path, refresh=True)
    if settings.llm_provider == "gemini":
        from bot.engine.gemini import GeminiEngine

        return GeminiEngine(settings, recording=recording)
    if settings.llm_provider == "openai":
        from bot.engine.openai_chat import OpenAIChatAdapter

        return LLMEngine(settings, OpenAIChatAdapter(settings), recording=recording)
    from bot.engine.anthropic_messages import AnthropicAdapter

    return LLMEngine(settings, AnthropicAdapter(settings), recording=recording)


def build_shadow(settings: Settings) -> DecisionEngine | None:
    """The engine that decides beside an LLM on the same context, for the scorecard: the
    rules engine, free and deterministic. The rules engine itself has no shadow."""
    if settings.llm_provider == "rules":
        return None
    from bot.engine.rules import RulesEngine

    return RulesEngine(settings)
