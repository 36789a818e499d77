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


def test_replay_live_refuses_a_recording_for_a_rules_engine_day(
        sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The day decided with the rules engine, which asks no model: ``--recording`` was
    handed to its replay, which served nothing from it, and the diff came out as if it had."""
    from sqlalchemy import select

    from db.engine import make_engine, session_factory
    from db.models import Session
    from tests.loop_harness import make_runtime, step
    from tests.test_kill import cut_file

    step(make_runtime(sqlite_url, [cut_file(tmp_path, 215)], kind="live", run_name="default"),
         10)
    with session_factory(make_engine(sqlite_url))() as db:
        day = db.scalars(select(Session.date)).one().isoformat()
    answers = tmp_path / "answers.jsonl"
    answers.write_text("")
    code = main(["replay-live", "--db", sqlite_url, "--bot", "default", "--day", day,
                 "--recording", str(answers)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--recording: bot 'default' decided its day with the rules engine" in err, err


@pytest.mark.parametrize("given", ["a directory", "a file of other lines"])
def test_a_recording_that_is_no_recording_is_named(
        tmp_path: Path, candles: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    """A folder given as --recording (or --record) ended in IsADirectoryError's traceback,
    and a file of other lines in a ValueError's, exit 1."""
    monkeypatch.setenv("LLM_API_KEY", "sk-test-0000")  # the engine is built, never called
    path = tmp_path / "answers"
    if given == "a directory":
        path.mkdir()
        named = f"{path} is a directory, not a recording of LLM answers"
    else:
        path.write_text('{"key": "k"}\n{"key": "k", "response": {}}\n')
        named = f"{path}:1: not a recording line"
    # --record reads only a cut last line of a file: it appends after the others
    for flag in ("--recording", "--record") if given == "a directory" else ("--recording",):
        code = main(["replay", "--candles", str(candles), "--db",
                     f"sqlite:///{tmp_path / 'r.db'}", "--json", "--engine", "openai", flag,
                     str(path)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert named in err and "Traceback" not in err, err
