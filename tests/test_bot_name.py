"""A bot's name is refused at start, in words, when the commands could not reach it: an
empty ``--name`` ran the bot as ``default`` (or as BOT_NAME) with exit 0, and a name of
spaces was refused with a regular expression for a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main


@pytest.mark.parametrize(("name", "named"), [
    ("", "''"),
    ("   ", "'   '"),
    ("a b", "'a b'"),
    ("bot/1", "'bot/1'"),
    ("-x", "'-x'"),  # ``command stop --bot -x`` reads -x as an option
    ("Confirm", "'Confirm'"),  # Telegram reads ``/stop confirm`` as the confirmation
], ids=repr)
@pytest.mark.parametrize("given", ["--name", "BOT_NAME"])
def test_a_name_the_commands_cannot_reach_is_refused_at_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        name: str, named: str, given: str) -> None:
    url = f"sqlite:///{tmp_path / 'bots.db'}"
    argv = ["run", "--db", url, "--iterations", "1"]
    if given == "--name":
        argv[1:1] = [f"--name={name}"]
    else:
        monkeypatch.setenv("BOT_NAME", name)
    assert main(argv) == 2
    err = capsys.readouterr().err
    origin = "BOT_NAME (--name)" if given == "--name" else "BOT_NAME"
    assert f"invalid setting {origin}: {named} is not a bot name" in err, err
    assert "letters, digits" in err and "pattern" not in err, err
    assert not (tmp_path / "bots.db").exists()  # refused before anything was made
