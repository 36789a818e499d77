"""A replay run's life: the live driver steps it (a STOP ends it), a finished run is left as
it is, a run killed at any step resumes to the uninterrupted fills, and its summary counts
its steps, decided or not."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bot.account import quote_balance
from bot.replay import ReplayArgs, run_replay
from bot.runtime import Runtime
from db.bots import DEFAULT_BOT, bot_names, fleet
from db.commands import enqueue_command
from db.engine import make_engine, session_factory
from db.heartbeat import beat, heartbeat
from db.migrate import upgrade
from db.models import (
    Command,
    LLMTrace,
    MarketData,
    Order,
    PaperClock,
    PerformanceRollup,
    Trade,
)
from db.queries_replays import replay_runs, run_session_ids, run_summary
from tests.conftest import ROOT
from tests.test_kill import Crash, cut_file

# 199 warm up, 127 steps: enough to trade, quick to replay several times; its last step
# enters, a fill that only a step after it would have booked
CANDLES = 326


@pytest.fixture(scope="module")
def cut(tmp_path_factory) -> Path:
    return cut_file(tmp_path_factory.mktemp("runs"), CANDLES)


@pytest.fixture(scope="module")
def uninterrupted(cut: Path, tmp_path_factory) -> dict:
    steps: list[int] = []
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    summary = run_replay(ReplayArgs([cut], url), progress=False,
                         observer=lambda rt: steps.append(1))
    assert summary["trades"] >= 4, "the cut must trade for the kill points to matter"
    summary["steps"] = len(steps)
    return summary


def _at_step(step: int, act: Callable[[Runtime], None]) -> Callable[[Runtime], None]:
    """An observer that calls ``act`` after the ``step``-th iteration of its runtime."""
    done = [0]

    def observe(rt: Runtime) -> None:
        done[0] += 1
        if done[0] == step:
            act(rt)
    return observe


def _queue(command: str) -> Callable[[Runtime], None]:
    def act(rt: Runtime) -> None:
        with rt.db() as db:
            enqueue_command(db, command, bot=rt.settings.bot_name)
    return act


def _crash(rt: Runtime) -> None:
    raise Crash


def _rows(url: str) -> dict[str, object]:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        counts = {model.__tablename__: db.scalar(select(func.count()).select_from(model))
                  for model in (MarketData, LLMTrace, Order, Trade)}
        counts["clock"] = db.scalar(select(PaperClock.now_ms))
    engine.dispose()
    return counts


def _replay_cli(cut: Path, url: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bot", "replay", "--candles", str(cut), "--db",
                           url, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_finished_replay_run_again_is_left_as_it_is(cut: Path, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = _replay_cli(cut, url)
    rows = _rows(url)
    again = _replay_cli(cut, url)
    assert _rows(url) == rows, "the finished run was stepped again"
    assert again == first


# every third of the run, the first step, and after the last one (before the run is marked
# finished): a restart redoes the interrupted step, and must not redo it differently
@pytest.mark.parametrize("fraction", [0.0, 1 / 3, 2 / 3, 1.0])
def test_a_run_killed_at_any_step_resumes_to_the_uninterrupted_fills(
        cut: Path, uninterrupted: dict, tmp_path, fraction: float) -> None:
    kill_after = max(1, round(uninterrupted["steps"] * fraction))
    args = ReplayArgs([cut], f"sqlite:///{tmp_path / 'killed.db'}")
    with pytest.raises(Crash):
        run_replay(args, progress=False, observer=_at_step(kill_after, _crash))
    resumed = run_replay(args, progress=False)
    assert resumed["fingerprint"] == uninterrupted["fingerprint"]
    assert resumed["trades"] == uninterrupted["trades"]
    assert resumed["candles"] == uninterrupted["steps"]
    assert run_replay(args, progress=False) == resumed, "the resumed run did not finish"


def test_a_stop_command_ends_a_replay_which_then_resumes(cut: Path, uninterrupted: dict,
                                                         tmp_path) -> None:
    args = ReplayArgs([cut], f"sqlite:///{tmp_path / 'stopped.db'}")
    steps: list[int] = []
    queue_stop = _at_step(20, _queue("stop"))

    def observe(rt: Runtime) -> None:
        steps.append(1)
        queue_stop(rt)

    stopped = run_replay(args, progress=False, observer=observe)
    assert len(steps) == 21, "the step after the STOP was queued obeys it, and is the last"
    assert stopped["candles"] == 21
    resumed = run_replay(args, progress=False)
    assert resumed["fingerprint"] == uninterrupted["fingerprint"]
    assert resumed["candles"] == uninterrupted["steps"]


def test_the_summary_of_a_paused_replay_counts_its_steps_and_values_its_account(
        cut: Path, uninterrupted: dict, tmp_path) -> None:
    """Paused while a position is open: no trace is written after the pause, while the
    steps go on and the plan still exits at a later price."""
    args = ReplayArgs([cut], f"sqlite:///{tmp_path / 'paused.db'}")
    runtimes: list[Runtime] = []
    paused: list[int] = []

    def observe(rt: Runtime) -> None:
        runtimes[:] = [rt]
        if not paused and rt.book.open_items():
            _queue("pause")(rt)
            paused.append(1)

    summary = run_replay(args, progress=False, observer=observe)
    rt = runtimes[0]
    with rt.db() as db:
        traced = db.scalar(select(func.count()).select_from(LLMTrace))
    assert traced < uninterrupted["steps"] / 2, "the pause must skip most decisions"
    assert summary["candles"] == uninterrupted["steps"]
    account = quote_balance(rt) + sum(holding.quantity * rt.quotes[symbol].last
                                      for symbol, holding in rt.book.open_items().items())
    assert summary["final_equity"] == round(account, 8)


def _clock_summary(url: str) -> str | None:
    engine = make_engine(url)
    with engine.begin() as conn:
        recorded = conn.scalar(text("SELECT summary FROM paper_clock"))
    engine.dispose()
    return recorded


def test_a_finished_run_records_its_summary_and_warnings_as_its_rows_give_them(cut: Path, uninterrupted: dict,
                                                                tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    summary = run_replay(ReplayArgs([cut], url), progress=False)
    recorded = _clock_summary(url)
    assert recorded is not None, "the finished run recorded no summary"
    assert json.loads(recorded) == {key: summary[key] for key in json.loads(recorded)}
    assert json.loads(recorded)["fingerprint"] == uninterrupted["fingerprint"]
    engine = make_engine(url)
    with engine.begin() as conn:  # without the record, the summary is computed from the rows
        conn.execute(text("UPDATE paper_clock SET summary = NULL"))
    with session_factory(engine)() as db:
        ids = run_session_ids(db, summary["run_name"])
        computed = run_summary(db, ids, 10_000.0, summary["run_name"])
    engine.dispose()
    assert computed | {"warnings": summary["warnings"]} == json.loads(recorded)


def test_a_finished_run_reads_as_it_finished_whatever_its_rows_become(cut: Path,
                                                                      tmp_path) -> None:
    """The page and the CLI read a finished run's recorded summary, not its rows: a year of
    them costs half a second a look, and they no longer change."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    summary = run_replay(ReplayArgs([cut], url), progress=False)
    engine = make_engine(url)
    with engine.begin() as conn:  # rows no replay writes after its end: the record stands
        conn.execute(text("DELETE FROM trades"))
    with session_factory(engine)() as db:
        ids = run_session_ids(db, summary["run_name"])
        assert run_summary(db, ids, 10_000.0, summary["run_name"]) == {
            key: summary[key] for key in summary if key not in ("warnings", "contamination")}
        listed = replay_runs(db)[0]
    engine.dispose()
    assert (listed["fingerprint"], listed["trades"], listed["candles"]) == (
        summary["fingerprint"], summary["trades"], summary["candles"])


def test_a_run_killed_as_it_finished_is_rolled_up_when_run_again(cut: Path, tmp_path,
                                                                 monkeypatch) -> None:
    """A kill after the finished mark, before the last day's rollup and scores: run again,
    the finished run only prints its summary, and writes what it left unwritten."""
    import bot.replay

    def killed(rt: Runtime, **_: object) -> None:
        raise Crash

    args = ReplayArgs([cut], f"sqlite:///{tmp_path / 'finishing.db'}")
    monkeypatch.setattr(bot.replay, "roll_up", killed)
    with pytest.raises(Crash):
        run_replay(args, progress=False)
    monkeypatch.undo()
    rows = _rows(args.db_url)
    run_replay(args, progress=False)
    assert _rows(args.db_url) == rows, "the finished run was stepped again"
    engine = make_engine(args.db_url)
    with session_factory(engine)() as db:
        sessions = db.scalars(select(PaperClock.account)).all()
        assert len(sessions) == 1
        ids = run_session_ids(db, sessions[0])
        rolled = db.scalars(select(PerformanceRollup.session_id)).all()
    engine.dispose()
    assert sorted(rolled) == sorted(ids)


def _edited_in_place(cut: Path, folder: Path) -> Path:
    """A copy of ``cut`` whose last close is another price of the same length, inside its
    candle's range: a corrected file of the same name and size."""
    edited = folder / cut.parent.name / cut.name
    edited.parent.mkdir(parents=True, exist_ok=True)
    lines = cut.read_text().splitlines(keepends=True)
    stamp, opened, high, low, close, volume = lines[-1].rstrip("\n").split(",")
    width = len(close)
    other = next(text for step in range(1, 1000) for price in (float(close) - step / 10,
                                                               float(close) + step / 10)
                 if float(low) <= price <= float(high)
                 and len(text := f"{price:.1f}".removesuffix(".0")) == width
                 and text != close)
    lines[-1] = ",".join((stamp, opened, high, low, other, volume)) + "\n"
    edited.write_text("".join(lines))
    assert edited.stat().st_size == cut.stat().st_size
    return edited


def test_a_file_corrected_in_place_is_replayed_anew(cut: Path, tmp_path) -> None:
    """A file corrected to the same name and size is other candles: its replay is a run of
    its own, never the earlier file's finished run summarized again."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    before = _replay_cli(cut, url)
    edited = _edited_in_place(cut, tmp_path / "edited")
    fresh = _replay_cli(edited, f"sqlite:///{tmp_path / 'fresh.db'}")
    assert fresh["buy_and_hold_pct"] != before["buy_and_hold_pct"], "the edit must show"
    assert _replay_cli(edited, url) == fresh


def test_a_replay_into_a_bots_database_leaves_the_bot_alone(cut: Path, uninterrupted: dict,
                                                           tmp_path, monkeypatch) -> None:
    """A replay written into the database a live bot runs on, under the same BOT_NAME (the
    default), is not that bot: the bot's pending close-all stays the bot's to carry out,
    its heartbeat and its paused flag are untouched, the fleet lists the bot alone, and the
    replay trades as it does in a database of its own."""
    monkeypatch.delenv("BOT_NAME", raising=False)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    seen = datetime(2026, 1, 2, tzinfo=UTC)
    with factory() as db:
        beat(db, DEFAULT_BOT, seen, pid=4242, host="trader", state="running", mode="PAPER",
             venue="paper", engine="rules", symbols="BTC/USDT", paused=False)
        command_id = enqueue_command(db, "close-all", bot=DEFAULT_BOT)
    summary = run_replay(ReplayArgs([cut], url), progress=False)
    assert summary["fingerprint"] == uninterrupted["fingerprint"]
    with factory() as db:
        command = db.get(Command, command_id)
        assert (command.status, command.result) == ("pending", None)
        status = heartbeat(db, DEFAULT_BOT)
        assert status is not None
        assert (status["pid"], status["state"], status["paused"]) == (4242, "running", False)
        assert bot_names(db) == [DEFAULT_BOT]
        assert [row.name for row in fleet(db)] == [DEFAULT_BOT]
    engine.dispose()


def test_a_second_process_of_a_running_replay_is_refused(cut: Path, uninterrupted: dict,
                                                         tmp_path, capsys) -> None:
    """The same replay started again while it runs (Start pressed twice on the Replays
    page, or the command run from a shell too) is the same run: two processes stepping it
    wrote its candles twice, its position snapshot and exposure over each other's, and its
    audit failed. The second is refused, naming the run, and the first replays as it
    does alone."""
    from bot.__main__ import EXIT_LOCKED, main
    from bot.audit import audit

    url = f"sqlite:///{tmp_path / 'twice.db'}"
    answers: list[int] = []

    def start_again(rt: Runtime) -> None:
        answers.append(main(["replay", "--candles", str(cut), "--db", url, "--json"]))

    summary = run_replay(ReplayArgs([cut], url), progress=False,
                         observer=_at_step(5, start_again))
    assert answers == [EXIT_LOCKED]
    said = capsys.readouterr().err
    assert f"replay run {summary['run_name']} is already running" in said
    assert summary["fingerprint"] == uninterrupted["fingerprint"]
    assert summary["exposure_time_pct"] == uninterrupted["exposure_time_pct"]
    engine = make_engine(url)
    with session_factory(engine)() as db:
        assert all(check.ok for check in audit(db)), audit(db)
    engine.dispose()
