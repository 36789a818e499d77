"""``python -m bot replay-live``: a live paper day on an OpenAI-compatible stand-in server,
replayed from its stored candles and LLM recording, and diffed against what happened live.

The live run is the real loop, paper venue and SQLite, asking the stand-in over the network
(``tests/test_openai_local_run.py``); the replay is the real replay over the candle files
the command writes from the live session, served from the live run's recording.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.__main__ import main
from bot.config import load_settings
from bot.engine.factory import build_engine
from bot.live_diff import diff_decisions, diff_fills, diff_pnl
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Session, Trade
from tests.conftest import candle_file
from tests.loop_harness import make_runtime, step
from tests.test_openai_local_run import LLM, StandIn, stand_in  # noqa: F401

BOT = "livebot"


def live_day(url: str, base_url: str, recording: Path, steps: int) -> str:
    """A live paper bot over ``steps`` candles; the day its session is on."""
    overrides = {**LLM, "LLM_BASE_URL": base_url, "LLM_RECORDING": str(recording),
                 "BOT_NAME": BOT}
    engine = build_engine(load_settings(**overrides, SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h"))
    upgrade(url)
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], engine, kind="live", run_name=BOT,
                      **overrides)
    step(rt, steps)
    with session_factory(make_engine(url))() as db:
        (session,) = db.scalars(select(Session)).all()
    return session.date.isoformat()


@pytest.mark.slow
def test_a_live_day_replays_to_the_same_decisions_and_fills(
        tmp_path, stand_in: StandIn, capsys) -> None:  # noqa: F811
    url, recording = f"sqlite:///{tmp_path / 'live.db'}", tmp_path / "answers.jsonl"
    day = live_day(url, stand_in.url, recording, steps=3)
    asked = len(stand_in.requests)
    assert asked == 3

    assert main(["replay-live", "--db", url, "--bot", BOT, "--day", day, "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert len(stand_in.requests) == asked  # every answer came from the recording
    decisions = diff["decisions"]
    assert (decisions["live"], decisions["replay"], decisions["same"]) == (3, 3, 3)
    assert decisions["asked_anew"] == 0 and decisions["words"] == []
    assert {tuple(s["live"]) for s in decisions["steps"]} >= {("BUY BTC/USDT",)}
    assert diff["fills"]["live"] == diff["fills"]["replay"] > 0
    assert diff["fills"]["words"] == ["the same fills"]
    assert diff["pnl"]["live"] == diff["pnl"]["replay"]
    assert diff["pnl"]["words"] == "the same net PnL"

    assert main(["replay-live", "--db", url, "--bot", BOT, "--day", day]) == 0
    text = capsys.readouterr().out
    assert f"{BOT} on {day}: live vs replay" in text and "decisions: 3 live, 3 replay, 3 the same" in text

    # bad input is named, exit 2, no traceback
    for argv, named in (
            (["--bot", "nobody", "--day", day], "unknown bot 'nobody'"),
            (["--bot", BOT, "--day", "2001-01-01"], f"bot '{BOT}' has no live session on 2001-01-01"),
            (["--bot", BOT, "--day", day, "--recording", str(tmp_path / "none.jsonl")],
             "no LLM recording at"),
            (["--bot", BOT, "--day", "yesterday"], "--day 'yesterday' is not a date")):
        assert main(["replay-live", "--db", url, *argv]) == 2
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err


def fill(when: str, side: str, size: float, price: float, pnl: float = 0.0) -> Trade:
    return Trade(timestamp=datetime.fromisoformat(when), symbol="BTC/USDT", action=side,
                 quantity=size, price=price, fee=size * price * 0.001, realized_pnl=pnl)


def test_differences_are_worded_by_their_cause() -> None:
    buy, hold = '{"actions": [{"action": "BUY", "symbol": "BTC/USDT"}]}', '{"actions": []}'
    at = datetime.fromisoformat
    decided = diff_decisions(
        [(at("2026-01-01T10:05:00+00:00"), buy, "a"), (at("2026-01-01T10:07:30+00:00"), hold, "b"),
         (at("2026-01-01T10:10:00+00:00"), hold, "c")],
        [(at("2026-01-01T10:05:00+00:00"), buy, "a"), (at("2026-01-01T10:10:00+00:00"), buy, "d")],
        300_000)
    assert decided["same"] == 1 and decided["asked_anew"] == 1
    assert decided["words"] == [
        "1 replay decision(s) not served from the recording: their prompt differed from live's "
        "(other candles, positions or balance), so the model was asked anew"]
    assert [s["words"] for s in decided["steps"]] == [
        "same",
        "decision at 10:07:30 missing in the replay: the live loop decided between candles "
        "(or again on the same candle)",
        "decision at 10:10:00 differs: live HOLD, replay BUY BTC/USDT (the context differed: "
        "fills, positions or the candles seen at that time)"]
    filled = diff_fills([fill("2026-01-01T10:05:01+00:00", "BUY", 0.01, 100.02)],
                        [fill("2026-01-01T10:05:00+00:00", "BUY", 0.01, 100.0)])
    assert filled["words"] == ["fill 1 price differs by 0.02%: live fills at the venue's book, "
                               "the replay at the candle"]
    pnl = diff_pnl([fill("2026-01-01T11:00:00+00:00", "SELL", 0.01, 101.0, pnl=0.0098)],
                   [fill("2026-01-01T11:00:00+00:00", "SELL", 0.01, 101.0, pnl=0.01)])
    assert pnl["words"].startswith("net PnL differs by +0.0002 (realized +0.0002, fees +0.0000)")


@pytest.mark.slow
def test_a_live_bots_second_day_replays_from_the_warm_up_its_first_day_stored(
        tmp_path, capsys) -> None:
    """The second day's session stores only its own candles; the files replay-live writes
    still hold the warm-up before them (from the first day's session), so the replay decides
    at every step the live day did."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(url)
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], kind="live", run_name=BOT,
                      BOT_NAME=BOT)
    step(rt, 180)  # the file's first step is 09:25: midnight is 175 steps in
    with session_factory(make_engine(url))() as db:
        first, second = db.scalars(select(Session).order_by(Session.date)).all()
    assert main(["replay-live", "--db", url, "--bot", BOT, "--day", second.date.isoformat(),
                 "--json"]) == 0
    decisions = json.loads(capsys.readouterr().out)["decisions"]
    assert decisions["live"] == decisions["replay"] == 5
    assert decisions["same"] == 5, decisions["words"]


@pytest.mark.slow
def test_a_live_day_thinned_by_retention_is_compared_on_what_it_kept(tmp_path, capsys) -> None:
    """Retention deletes a past day's holds that cost nothing (``db.retention``); replayed,
    every hold of the replay read 'only in the replay: the live loop was not deciding at
    that candle's close', 162 false differences on a day whose decisions were all the
    same. The diff says the day was thinned and compares the decisions that acted."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(url)
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], kind="live", run_name=BOT,
                      BOT_NAME=BOT)
    step(rt, 470)  # the first day (175 steps) and the whole second, so the first rolls up
    with session_factory(make_engine(url))() as db:
        first = db.scalars(select(Session).order_by(Session.date)).first()
    assert first is not None
    day = first.date.isoformat()
    assert main(["replay-live", "--db", url, "--bot", BOT, "--day", day, "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert whole["decisions"]["live"] == whole["decisions"]["same"] == 175

    assert main(["prune", "--db", url, "--days", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["traces"] > 100
    assert main(["replay-live", "--db", url, "--bot", BOT, "--day", day, "--json"]) == 0
    thinned = json.loads(capsys.readouterr().out)
    decisions = thinned["decisions"]
    assert decisions["live"] == decisions["replay"] == decisions["same"] > 0
    assert [s["words"] for s in decisions["steps"]] == ["same"] * decisions["same"]
    assert any("thinned by retention" in words for words in decisions["words"])
    assert thinned["fills"] == whole["fills"] and thinned["pnl"] == whole["pnl"]
