"""Telegram's and MCP's reads of a bot are of its own live sessions. A bot with none yet
(``default`` on a fresh database, a bot registered before its first day) showed the newest
replay's positions, plans and PnL as its own: an operator asking "positions" saw holdings
no account has, and a CLOSE of one went to a bot that holds nothing."""

from __future__ import annotations

from bot import remote
from bot.replay import ReplayArgs, run_replay
from db.bots import DEFAULT_BOT
from db.engine import make_engine, session_factory
from tests.loop_harness import make_runtime, step
from tests.test_kill import cut_file


def test_a_bot_with_no_live_session_reads_as_having_none(sqlite_url, tmp_path) -> None:
    run_replay(ReplayArgs([cut_file(tmp_path, 326)], sqlite_url), progress=False)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db:
        assert remote.performance(db, DEFAULT_BOT)["days"] == []
        assert remote.positions(db, DEFAULT_BOT) == []
        assert remote.plans(db, DEFAULT_BOT) == []
        assert remote.pnl(db, DEFAULT_BOT) is None
        assert remote.recent_trades(db, DEFAULT_BOT) == []
    live = make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live",
                        run_name=DEFAULT_BOT)
    step(live)
    with session_factory(engine)() as db:
        figures = remote.pnl(db, DEFAULT_BOT)
        assert figures is not None and "/default" in figures["session"]
    engine.dispose()
