"""``python -m bot replay`` refuses, in words and before anything is made, what it would
otherwise ignore or crash on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from tests.test_replay import write_candles


@pytest.fixture
def candles(tmp_path: Path) -> Path:
    return write_candles(tmp_path / "BTC_USDT-5m.csv", [100 + (i % 12) for i in range(230)])


@pytest.mark.parametrize(("flags", "named"), [
    (["--recording", "answers.jsonl"], "--recording serves an LLM's recorded answers"),
    (["--record", "answers.jsonl"], "--record asks an LLM"),
    (["--engine", "rules", "--recording", "answers.jsonl"], "--engine rules asks no model"),
    (["--engine", "openai", "--record", "a.jsonl", "--recording", "b.jsonl"],
     "give --record or --recording, not both"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_a_recording_the_run_would_not_use_is_refused(
        tmp_path: Path, candles: Path, capsys: pytest.CaptureFixture[str],
        flags: list[str], named: str) -> None:
    """The rules engine asks no model: a replay given --recording ran without it and exited
    0, as if the answers had been served; with --record and --recording both, --record's
    file won unsaid."""
    (tmp_path / "answers.jsonl").write_text("")
    db = tmp_path / "r.db"
    code = main(["replay", "--candles", str(candles), "--db", f"sqlite:///{db}", "--json",
                 *flags])
    err = capsys.readouterr().err
    assert code == 2, err
    assert named in err and "Traceback" not in err, err
    assert not db.exists()  # refused before the run was made
