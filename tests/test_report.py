"""``python -m bot report``: the figures of a replay run as JSON or text, over any span, and
a named error (exit 2, no traceback) for every input a user can get wrong."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import delete, func, select, update

from bot.__main__ import main
from bot.model.performance import METRIC_LABELS
from db.engine import make_engine, session_factory
from db.models import LLMTrace, PerformanceRollup, Session
from db.performance import report as span_report
from db.performance_rollups import roll_up_every_run
from db.queries_replays import run_figures, run_session_ids, run_summary
from tests.analytics_replay import analytics_replay  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow


def report(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_json_report_of_a_run(analytics_replay, capsys) -> None:  # noqa: F811
    code, out, err = report(capsys, "--db", analytics_replay.url, "--run",
                            analytics_replay.run_name, "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert set(result) == {"metrics", "round_trips", "by_symbol", "by_month", "scorecard"}
    metrics, trips = result["metrics"], result["round_trips"]
    closed = [t for t in trips if t["closed_at"]]
    assert metrics["round_trips"] == len(closed) > 10
    assert metrics["net_pnl"] == pytest.approx(sum(t["net_pnl"] for t in closed))
    assert [row["symbol"] for row in result["by_symbol"]] == ["BTC/USDT"]
    assert result["by_symbol"][0]["net_pnl"] == pytest.approx(metrics["net_pnl"])
    summary = analytics_replay.summary
    assert metrics["final_equity"] == pytest.approx(summary["final_equity"], abs=0.01)
    assert metrics["buy_and_hold_pct"] == pytest.approx(summary["buy_and_hold_pct"], abs=1e-3)
    assert metrics["exposure_time_pct"] == pytest.approx(summary["exposure_time_pct"], abs=0.01)
    assert [m["period"] for m in result["by_month"]] == ["2023-01"]
    # every trip the rules engine opened is its decision's: their closed trips' net PnL
    card = result["scorecard"]
    assert card["decisions"] > 0 and card["realized_pnl"] == pytest.approx(
        sum(t["net_pnl"] for t in closed if t["open_trace_id"] is not None))
    assert card["realized_pnl"] == pytest.approx(metrics["net_pnl"])


def test_a_span_reports_only_its_days(analytics_replay, capsys) -> None:  # noqa: F811
    args = ["--db", analytics_replay.url, "--run", analytics_replay.run_name, "--json"]
    whole = json.loads(report(capsys, *args)[1])
    first = json.loads(report(capsys, *args, "--end", "2023-01-04")[1])
    rest = json.loads(report(capsys, *args, "--start", "2023-01-05")[1])
    assert first["metrics"]["end"] == "2023-01-05T00:00:00+00:00"  # the end date counts
    assert all(t["closed_at"] < "2023-01-05" for t in first["round_trips"] if t["closed_at"])
    assert all(t["closed_at"] >= "2023-01-05" for t in rest["round_trips"] if t["closed_at"])
    assert (first["metrics"]["round_trips"] + rest["metrics"]["round_trips"]
            == whole["metrics"]["round_trips"])


def test_the_text_report_says_its_figures_in_words(analytics_replay, capsys) -> None:  # noqa: F811
    code, out, _ = report(capsys, "--db", analytics_replay.url, "--run",
                          analytics_replay.run_name)
    assert code == 0
    assert "Sharpe ratio (daily, ×√365)" in out and "Max drawdown" in out
    assert "_" not in out.split("Per symbol")[0]  # no snake_case names


@pytest.mark.parametrize(("args", "named"), [
    (["--run", "replay-nope"], "no replay run named 'replay-nope'"),
    (["--bot", "ghost"], "no bot named 'ghost'"),
    (["--start", "2023-02-30"], "--start '2023-02-30' is not a date"),
    (["--end", "yesterday"], "--end 'yesterday' is not a date"),
    (["--end", "9999-12-31"], "--end '9999-12-31' is past the last date"),
    (["--start", "2023-01-05", "--end", "2023-01-04"], "--end 2023-01-04 is not after --start"),
])
def test_bad_input_is_named_without_a_traceback(analytics_replay, capsys, args,  # noqa: F811
                                               named) -> None:
    run = [] if "--run" in args or "--bot" in args else ["--run", analytics_replay.run_name]
    code, out, err = report(capsys, "--db", analytics_replay.url, *run, *args)
    assert code == 2 and out == ""
    assert named in err and "Traceback" not in err


def test_a_database_file_that_is_not_there_is_named_and_not_created(tmp_path, capsys) -> None:
    absent = tmp_path / "absent.db"
    code, out, err = report(capsys, "--db", f"sqlite:///{absent}")
    assert (code, out) == (2, "") and f"no database file at {absent}" in err
    assert not absent.exists()


def test_a_comparison_figure_named_as_a_report_figure_is_that_figure(
        analytics_replay, tmp_path) -> None:  # noqa: F811
    """The Replays comparison and the report (the Performance page) never show one name
    with two figures for the same run: here with an LLM cost, which the report's total
    return leaves out."""
    copy = tmp_path / "replays.db"
    shutil.copy(analytics_replay.url.removeprefix("sqlite:///"), copy)
    with session_factory(make_engine(f"sqlite:///{copy}"))() as db:
        ids = run_session_ids(db, analytics_replay.run_name)
        trace = db.scalar(select(func.min(LLMTrace.id)).where(LLMTrace.session_id.in_(ids)))
        db.execute(update(LLMTrace).where(LLMTrace.id == trace).values(cost=25.0))
        db.execute(update(Session).where(Session.id == ids[0]).values(total_llm_cost=25.0))
        db.execute(delete(PerformanceRollup))  # rolled up as if the cost had been recorded
        db.commit()
        roll_up_every_run(db)
        figures = run_figures(run_summary(db, ids, 10_000.0, analytics_replay.run_name))
        metrics = span_report(db, ids)["metrics"]
    words = {(f"{label} %" if unit == "%" else label): key
             for key, (label, unit) in METRIC_LABELS.items()}
    shared = {name: (value, metrics[words[name]]) for name, value in figures.items()
              if name in words}
    assert "LLM cost" in shared
    assert {name: pair for name, pair in shared.items()
            if pair[1] is None or abs(pair[0] - pair[1]) > 1e-3} == {}

