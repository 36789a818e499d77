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


def test_mcps_performance_counts_wins_of_round_trips_after_fees(sqlite_url, tmp_path) -> None:
    """MCP's ``performance`` tells, per day and in total, wins, losses and a win rate beside
    the report's metrics. A round trip that sold above its entry but not by its fees lost
    money: it counted as a win (a closing fill in profit before fees), a 100% win rate in
    the same answer whose metrics read 0%, as the Overview and Telegram's /pnl did before
    they read the session's round trips."""
    from sqlalchemy import select

    from bot.engine.schema import Action, ActionType, Decision
    from db.models import Trade
    from tests.crafted import flat_then
    from tests.loop_harness import ScriptedEngine
    from tests.test_plans import LOOSE, SYMBOL

    buy = Decision(actions=[Action(action=ActionType.BUY, symbol=SYMBOL, size=1.0, stop=90.0,
                                   target=120.0, reason="in")])
    sell = Decision(actions=[Action(action=ActionType.SELL, symbol=SYMBOL, reason="out")])
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.2, 100.2, 100.2])
    rt = make_runtime(sqlite_url, [path], ScriptedEngine([buy, sell]), kind="live",
                      run_name=DEFAULT_BOT, **LOOSE)
    step(rt, 3)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db:
        (entry, exit_) = db.scalars(select(Trade).order_by(Trade.id))
        assert 0 < exit_.realized_pnl < entry.fee + exit_.fee, "a trip won before fees only"
        answer = remote.performance(db, DEFAULT_BOT)
    engine.dispose()
    assert answer["metrics"]["win_rate_pct"] == 0
    (day,) = answer["days"]
    assert (day["wins"], day["losses"]) == (0, 1)
    assert (answer["total"]["wins"], answer["total"]["losses"]) == (0, 1)
    assert answer["total"]["win_rate"] == 0


def test_the_status_of_a_replay_run_is_said_in_words(sqlite_url, tmp_path) -> None:
    """A replay run takes commands under its name, so a remote operator may name it; it is
    no bot of the fleet and has no state. MCP's ``status`` of it failed with a bare
    StopIteration, and Telegram's /status answered an empty text, which the Bot API refuses
    (the operator got nothing back)."""
    from datetime import UTC, datetime

    import pytest

    from bot.telegram import Desk
    from db.bots import UnknownBot

    run = run_replay(ReplayArgs([cut_file(tmp_path, 205)], sqlite_url), progress=False)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db, pytest.raises(UnknownBot, match=run["run_name"]):
        remote.status(db, run["run_name"], datetime.now(UTC))
    reply = Desk(session_factory(engine), frozenset({1})).answer(1, "status", [run["run_name"]])
    engine.dispose()
    assert run["run_name"] in reply.text and "replay" in reply.text, reply.text


def test_mcp_serves_a_trace_only_under_the_bot_whose_decision_it_is(sqlite_url, tmp_path) -> None:
    """Every remote read is of the named bot's own live sessions, but MCP's ``trace`` served
    any trace id: another bot's decision, or a replay's, read as this bot's. Each is refused
    in words, saying whose it is; the bot's own is served, and with several bots one is
    named."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from bot.config import load_settings
    from bot.mcp_server import build_server
    from db.bots import register_bot
    from db.models import LLMTrace, Session
    from tests.test_mcp import answer, run

    run_replay(ReplayArgs([cut_file(tmp_path, 205)], sqlite_url), progress=False)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db:  # as its first heartbeat does
        register_bot(db, "other", datetime.now(UTC))
        db.commit()
    for name in (DEFAULT_BOT, "other"):
        step(make_runtime(sqlite_url, [cut_file(tmp_path, 205)], kind="live", run_name=name))
    with session_factory(engine)() as db:
        first = {run_name: trace_id for run_name, trace_id in db.execute(
            select(Session.run_name, LLMTrace.id).join(Session, Session.id == LLMTrace.session_id)
            .order_by(LLMTrace.id.desc()))}
    engine.dispose()
    replay = next(tid for run_name, tid in first.items() if run_name.startswith("replay-"))

    async def talk(client):
        return {
            "own": await answer(client, "trace", trace_id=first[DEFAULT_BOT], bot=DEFAULT_BOT),
            "other": await client.call_tool("trace", {"trace_id": first["other"],
                                                      "bot": DEFAULT_BOT}),
            "replay": await client.call_tool("trace", {"trace_id": replay, "bot": DEFAULT_BOT}),
            "unnamed": await client.call_tool("trace", {"trace_id": first[DEFAULT_BOT]}),
            "missing": await client.call_tool("trace", {"trace_id": 10**6, "bot": "other"}),
        }

    seen = run(talk, build_server(load_settings(DATABASE_URL=sqlite_url)))
    assert seen["own"]["id"] == first[DEFAULT_BOT]
    said = {key: str(seen[key].content) for key in ("other", "replay", "unnamed", "missing")}
    assert all(seen[key].is_error for key in said), said
    assert f"decision trace #{first['other']} is of bot 'other'" in said["other"]
    assert "not of bot 'default'" in said["other"]
    assert f"decision trace #{replay} is of a replay run" in said["replay"]
    assert "default, other" in said["unnamed"]  # two bots: which one is asked
    assert "no decision trace #1000000" in said["missing"]


def test_a_replay_runs_holdings_and_figures_are_not_said_to_be_none(sqlite_url,
                                                                   tmp_path) -> None:
    """Named remotely, a replay run answered /positions with 'is flat: no open positions',
    /trades with 'has no trades yet' and /pnl with 'has no session yet' (MCP: empty lists,
    a null session), whatever the run held and traded: the reads are of a bot's live
    sessions, and a replay has none. They say it is a replay run, as /status does."""
    import pytest

    from bot.telegram import Desk
    from db.bots import UnknownBot

    name = run_replay(ReplayArgs([cut_file(tmp_path, 205)], sqlite_url),
                      progress=False)["run_name"]
    engine = make_engine(sqlite_url)
    factory = session_factory(engine)
    for read in (remote.positions, remote.plans, remote.recent_trades, remote.decisions,
                 remote.pnl, remote.performance, remote.round_trips):
        with factory() as db, pytest.raises(UnknownBot, match=f"{name}' is a replay run"):
            read(db, name)
    desk = Desk(factory, frozenset({1}))
    for command in ("positions", "trades", "pnl"):
        said = desk.answer(1, command, [name]).text
        assert f"{name}' is a replay run" in said, said
    engine.dispose()
