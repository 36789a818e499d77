"""The sidebar's Start, Stop and Restart of a bot's process, for a bot another machine runs.

The console starts a bot as its own child with the console's environment (its exchange,
keys and mode); a bot on another machine runs with that machine's. Started here it would
trade under the console's account, and Stop or Restart can signal no process there, so its
process controls are disabled, saying where it runs; its commands still go through the
table. The console's own bot keeps them: it runs with the console's environment.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from db.bots import register_bot
from db.engine import make_engine, session_factory
from db.heartbeat import beat
from db.models import Session
from tests.rendered import as_rendered
from tests.test_console_apptest import (  # the two fixtures are imported for pytest
    _app,
    _console_env,  # noqa: F401
    _open,
    _pending_by_bot,
    seeded_url,  # noqa: F401
)

PROCESS_BUTTONS = ("proc_start", "proc_stop", "proc_restart")


def _alpha_on(url: str, host: str, state: str) -> None:
    """Bot alpha, with the seeded sessions, last seen on ``host``; the console's own bot
    ``default`` too."""
    engine = make_engine(url)
    with session_factory(engine)() as db:
        now = datetime.now(UTC)
        alpha = register_bot(db, "alpha", now)
        db.execute(update(Session).values(run_name="alpha", bot_id=alpha.id))
        beat(db, "alpha", now, state=state, host=host, pid=4242, mode="LIVE", venue="kraken")
        beat(db, "default", now, state="stopped", host=host, pid=4243)
    engine.dispose()


def test_a_bot_on_another_machine_has_no_process_controls_here(seeded_url, monkeypatch):  # noqa: F811
    _alpha_on(seeded_url, "machine-2", "stopped")
    at = _app(seeded_url, monkeypatch)
    for key in PROCESS_BUTTONS:  # its own bot, with its own settings, wherever it last beat
        assert not at.button(key=key).disabled, key
    at.selectbox(key="picked_bot").set_value("alpha").run()
    for key in PROCESS_BUTTONS:
        assert at.button(key=key).disabled, key
        assert "runs on machine-2" in as_rendered(at.button(key=key).help or ""), key
    _open(at, "portfolio")
    at.button(key="cmd_pause").click().run()  # commands go through the table, as before
    assert not at.exception
    assert _pending_by_bot(seeded_url) == [("alpha", "pause")]
