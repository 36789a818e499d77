"""Pick the decision engine the settings name."""

from __future__ import annotations

from bot.config import Settings
from bot.engine.base import DecisionEngine


def build_engine(settings: Settings) -> DecisionEngine:
    """The engine for ``settings.llm_provider``; Gemini is imported only when chosen."""
    if settings.llm_provider == "gemini":
        from bot.engine.gemini import GeminiEngine

        return GeminiEngine(settings)
    from bot.engine.rules import RulesEngine

    return RulesEngine(settings)
