"""A replay whose days fall before its model's training cutoff says its results may be
contaminated: in its summary and on the Replays page; the cutoff comes from the table of
published cutoffs or LLM_TRAINING_CUTOFF."""

from __future__ import annotations

from datetime import date

import httpx
import openai
import pytest

from bot.engine import openai_chat
from bot.model.training_cutoffs import contamination_warning, training_cutoff
from bot.replay import ReplayArgs, run_replay
from tests.crafted import flat_then
from tests.recorded_http import fixture
from tests.rendered import as_rendered
from tests.test_console_replays import _console_env, _replays_page  # noqa: F401  (autouse)
from tests.test_llm_replay import _factory


def test_the_cutoff_is_the_longest_prefix_or_the_override() -> None:
    assert training_cutoff("gpt-4o-mini") == date(2023, 10, 31)
    assert training_cutoff("openai/gpt-4.1-mini") == date(2024, 6, 30)  # OpenRouter's name
    assert training_cutoff("claude-sonnet-4-5-20250929") == date(2025, 7, 31)
    assert training_cutoff("claude-sonnet-4-20250514") == date(2025, 3, 31)
    assert training_cutoff("qwen2.5:7b") is None
    assert training_cutoff("qwen2.5:7b", date(2024, 9, 1)) == date(2024, 9, 1)


def test_days_before_the_cutoff_are_named_and_days_after_are_not() -> None:
    before = contamination_warning("openai", "gpt-4o-mini", date(2023, 1, 3), date(2023, 1, 6))
    assert before is not None and "All of the replayed days (2023-01-03 to 2023-01-06)" in before
    assert "2023-10-31" in before and "may be contaminated" in before
    across = contamination_warning("openai", "gpt-4o-mini", date(2023, 10, 30),
                                   date(2023, 11, 2))
    assert across is not None and across.startswith("Some of the replayed days")
    assert contamination_warning("openai", "gpt-4o-mini", date(2023, 11, 1),
                                 date(2023, 11, 2)) is None
    assert contamination_warning("rules", "", date(2020, 1, 1), date(2020, 1, 2)) is None
    unknown = contamination_warning("openai", "qwen2.5:7b", date(2023, 1, 3), date(2023, 1, 6))
    assert unknown is not None and "LLM_TRAINING_CUTOFF" in unknown


@pytest.mark.slow
def test_a_replay_before_its_models_cutoff_says_so_in_its_summary_and_page(
        sqlite_url, tmp_path, monkeypatch) -> None:
    # crafted candles of 2023-11-14/15, decided on from the 15th: after gpt-4o-mini's cutoff
    candles = flat_then(tmp_path / "BTC_USDT-5m.csv", [100.0] * 20)
    monkeypatch.setenv("LLM_MIN_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("LLM_API_KEY", "test-key-123")
    monkeypatch.setattr(openai_chat, "make_client", _factory(
        openai.OpenAI, httpx, [], fixture("openai", "hold.json")))
    after = run_replay(ReplayArgs([candles], f"sqlite:///{tmp_path / 'a.db'}",
                                  engine="openai"), progress=False)
    assert after["contamination"] is None

    monkeypatch.setenv("LLM_TRAINING_CUTOFF", "2024-01-01")  # as if trained later
    replay_db = tmp_path / "b.db"
    before = run_replay(ReplayArgs([candles], f"sqlite:///{replay_db}", engine="openai"),
                        progress=False)
    assert before["contamination"] is not None
    assert "All of the replayed days (2023-11-15 to 2023-11-15)" in before["contamination"]
    assert "2024-01-01, LLM_TRAINING_CUTOFF" in before["contamination"]

    monkeypatch.delenv("LLM_TRAINING_CUTOFF")  # the page reads what the run recorded
    at = _replays_page(sqlite_url, monkeypatch, replay_db)
    shown = [as_rendered(w.value) for w in at.main.warning]
    assert any("may be contaminated" in text and "2023-11-15" in text for text in shown), shown
