"""The LLM provider settings: defaults per provider, the older Gemini names, keys, base URLs
and what counts as a local model."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_each_provider_has_a_default_model_and_gemini_model_is_still_read(monkeypatch) -> None:
    monkeypatch.delenv("LLM_MODEL", raising=False)
    assert load_settings(LLM_PROVIDER="gemini", GEMINI_API_KEY="k").llm_model == (
        "gemini-2.5-flash")
    assert load_settings(LLM_PROVIDER="openai", LLM_API_KEY="k").llm_model == "gpt-4o-mini"
    assert load_settings(LLM_PROVIDER="anthropic", LLM_API_KEY="k").llm_model == (
        "claude-sonnet-4-5")
    monkeypatch.setenv("GEMINI_MODEL", "gemini-2.5-pro")
    assert load_settings(LLM_PROVIDER="gemini", GEMINI_API_KEY="k").llm_model == "gemini-2.5-pro"
    monkeypatch.setenv("LLM_MODEL", "gemini-2.5-flash-lite")  # the newer name wins
    assert load_settings(LLM_PROVIDER="gemini", GEMINI_API_KEY="k").llm_model == (
        "gemini-2.5-flash-lite")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_hosted_provider_needs_a_key_a_local_server_does_not(provider, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=f"LLM_PROVIDER={provider} needs LLM_API_KEY"):
        load_settings(LLM_PROVIDER=provider)
    local = load_settings(LLM_PROVIDER=provider, LLM_BASE_URL="http://localhost:11434/v1")
    assert local.llm_api_key is None and local.llm_is_local


def test_local_is_a_base_url_on_this_machine_or_the_flag() -> None:
    assert load_settings(LLM_BASE_URL="http://127.0.0.1:8000/v1").llm_is_local
    assert not load_settings(LLM_BASE_URL="https://openrouter.ai/api/v1").llm_is_local
    assert load_settings(LLM_BASE_URL="http://gpu-box.lan:11434/v1", LLM_LOCAL="true").llm_is_local
    # a proxy on this machine in front of a paid API is still paid for
    assert not load_settings(LLM_BASE_URL="http://127.0.0.1:4000", LLM_LOCAL="false").llm_is_local
    assert not load_settings().llm_is_local


@pytest.mark.parametrize("bad", ["localhost:11434", "ftp://host/v1", "http://"])
def test_a_bad_base_url_is_named(bad) -> None:
    with pytest.raises(ConfigError, match="invalid setting LLM_BASE_URL: .* not an http"):
        load_settings(LLM_BASE_URL=bad)


def test_the_llm_key_is_a_secret() -> None:
    settings = load_settings(LLM_PROVIDER="openai", LLM_API_KEY="sk-live-abcdef")
    assert "sk-live-abcdef" in settings.secret_values()
    assert "sk-live-abcdef" not in repr(settings)


def test_live_answers_go_to_a_file_per_bot() -> None:
    assert str(load_settings(BOT_NAME="swing").llm_recording_path) == (
        "data/llm-answers/swing.jsonl")
    assert str(load_settings(LLM_RECORDING="/tmp/a.jsonl").llm_recording_path) == "/tmp/a.jsonl"
