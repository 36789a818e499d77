"""The Performance page and the Trades page's Round trips view through AppTest, on a real
multi-day replay: what they show is what ``python -m bot report --json`` prints for the
same span."""

from __future__ import annotations

import json
import sqlite3

import pytest
from streamlit.testing.v1 import AppTest

from bot.__main__ import main
from bot.model.performance import METRIC_LABELS, shown
from tests.analytics_replay import analytics_replay  # noqa: F401  (a fixture)
from tests.test_console_apptest import _app, _console_env, _open  # noqa: F401  (an autouse fixture)

pytestmark = pytest.mark.slow
FIRST, LAST = "2023-01-03", "2023-01-06"  # the replay's days


def _page(url: str, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return _open(_app(url, monkeypatch), page)


def _report(capsys, url: str, run: str, *span: str) -> dict:
    assert main(["report", "--db", url, "--run", run, "--json", *span]) == 0
    return json.loads(capsys.readouterr().out)


def test_performance_page_shows_the_reports_figures(analytics_replay, monkeypatch,  # noqa: F811
                                                    capsys) -> None:
    url, run = analytics_replay.url, analytics_replay.run_name
    at = _page(url, "performance", monkeypatch)
    expected = _report(capsys, url, run, "--start", FIRST, "--end", LAST)["metrics"]
    on_page = {m.label: m.value for m in at.metric}
    compared = {key: (on_page[METRIC_LABELS[key][0]], shown(key, expected[key]))
                for key in expected if METRIC_LABELS.get(key, ("",))[0] in on_page}
    assert len(compared) >= 20
    assert all(page == report for page, report in compared.values()), compared
    assert on_page["Round trips closed"] == str(expected["round_trips"]) != "0"
    assert len(at.get("plotly_chart")) == 2  # equity with drawdown, months heatmap

    at.date_input(key="performance_dates").set_value(("2023-01-04", "2023-01-05")).run()
    assert not at.exception, [e.value for e in at.exception]
    narrower = _report(capsys, url, run, "--start", "2023-01-04", "--end", "2023-01-05")
    on_page = {m.label: m.value for m in at.metric}
    for key in ("total_return_pct", "sharpe", "round_trips", "max_drawdown_pct", "net_pnl"):
        assert on_page[METRIC_LABELS[key][0]] == shown(key, narrower["metrics"][key])
    assert narrower["metrics"]["round_trips"] < expected["round_trips"]
    by_day = at.dataframe[1].value  # the tabs: by week, by day
    assert len(by_day) == 2


def test_round_trips_view_filters_totals_and_links(analytics_replay, monkeypatch,  # noqa: F811
                                                   capsys) -> None:
    url, run = analytics_replay.url, analytics_replay.run_name
    at = _page(url, "trades", monkeypatch)
    at.segmented_control(key="trades_view").set_value("Round trips").run()
    assert not at.exception, [e.value for e in at.exception]
    report = _report(capsys, url, run)
    trips = report["round_trips"]
    table = at.dataframe[0].value
    assert len(table) == len(trips)
    assert list(table["open trace id"]) == [t["open_trace_id"] for t in trips]
    assert list(table["close trace id"].fillna(-1)) == [
        -1 if t["close_trace_id"] is None else t["close_trace_id"] for t in trips]
    totals = {m.label: m.value for m in at.metric}
    assert totals["Round trips closed"] == str(report["metrics"]["round_trips"])
    assert totals["Net PnL"] == f"{report['metrics']['net_pnl']:,.2f}"

    at.multiselect(key="trips_reasons").set_value(["stop", "trailing"]).run()
    at.selectbox(key="trips_outcome").set_value("losses").run()
    stops = [t for t in trips if t["exit_reason"] in ("stop", "trailing") and t["net_pnl"] < 0]
    table = at.dataframe[0].value
    assert stops and len(table) == len(stops)
    assert set(table["exit reason"]) <= {"stop", "trailing"} and (table["net PnL"] < 0).all()
    totals = {m.label: m.value for m in at.metric}
    assert totals["Net PnL"] == f"{sum(t['net_pnl'] for t in stops):,.2f}"
    assert at.get("download_button")


def test_decisions_page_scorecard_shows_the_reports_scorecard(  # noqa: F811
        analytics_replay, monkeypatch, capsys) -> None:  # noqa: F811
    url, run = analytics_replay.url, analytics_replay.run_name
    at = _page(url, "decisions", monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.metric  # scored only when asked
    at.toggle(key="dec_scorecard").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    card = _report(capsys, url, run, "--start", FIRST, "--end", LAST)["scorecard"]
    on_page = {m.label: m.value for m in at.metric}
    assert on_page["Decisions"] == f"{card['decisions']:,} over {card['days']} days"
    assert on_page["LLM cost per day (USD)"] == f"{card['cost_per_day']:.4f}"
    by_call = at.dataframe[0].value
    assert list(by_call["action"]) == [row["action"] for row in card["by_call"]]
    assert list(by_call["count"]) == [row["count"] for row in card["by_call"]]
    assert sum(by_call["count"]) == card["decisions"] > 0


def test_decisions_page_scorecard_from_the_rollup_is_the_raw_rows_scorecard(  # noqa: F811
        analytics_replay, monkeypatch) -> None:  # noqa: F811
    """The replay rolled its settled days up at each rollover; the page, which sums them,
    shows what scoring every trace from its candles gives."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from bot.model.scorecard import scorecard
    from db.engine import make_engine, session_factory
    from db.models import DecisionScoreDay
    from db.scorecard import decision_outcomes
    from db.sessions import run_session_ids
    from views._tables import heading

    url, run = analytics_replay.url, analytics_replay.run_name
    with session_factory(make_engine(url))() as db:
        ids = run_session_ids(db, "replay", run)
        rolled = db.scalar(select(func.sum(DecisionScoreDay.decisions))
                           .where(DecisionScoreDay.session_id.in_(ids)))
        start = datetime.fromisoformat(FIRST).replace(tzinfo=UTC)
        raw = scorecard(decision_outcomes(
            db, ids, start, datetime.fromisoformat(LAST).replace(tzinfo=UTC) + timedelta(days=1)))
    assert rolled and raw.decisions > rolled > 0  # some days rolled up, the last ones not
    at = _page(url, "decisions", monkeypatch)
    at.toggle(key="dec_scorecard").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    on_page = {m.label: m.value for m in at.metric}
    assert on_page["Decisions"] == f"{raw.decisions:,} over {raw.days} days"
    assert on_page["LLM cost (USD)"] == f"{raw.cost:.4f}"
    assert on_page["Realized PnL of what they opened, net of LLM cost"] == \
        f"{raw.realized_net_of_cost:,.2f}"
    by_call = at.dataframe[0].value
    assert list(by_call["action"]) == [row["action"] for row in raw.by_call]
    assert list(by_call["count"]) == [row["count"] for row in raw.by_call]
    for key in ("hit_rate_1h_pct", "avg_forward_4h_pct", "avg_forward_24h_pct"):
        shown = [None if value != value else round(value, 6) for value in by_call[heading(key)]]
        assert shown == [None if row[key] is None else round(row[key], 6)
                         for row in raw.by_call], key


def test_overviews_win_rate_is_the_days_round_trips_after_fees(
        analytics_replay, monkeypatch, capsys, tmp_path) -> None:  # noqa: F811
    """Each day's Overview shows the win rate the report (and Performance) give that day: of
    the round trips closed, after fees. Closing fills in profit before fees read higher."""
    from sqlalchemy import select

    from db.engine import make_engine, session_factory
    from db.models import Session
    from views._common import SESSION_PICK_KEY

    url, run = analytics_replay.url, analytics_replay.run_name
    unrolled = f"sqlite:///{tmp_path / 'unrolled.db'}"  # as a live run's days before rollover
    with sqlite3.connect(url.split("///", 1)[1]) as source, \
            sqlite3.connect(unrolled.split("///", 1)[1]) as copy:
        source.backup(copy)
        copy.execute("DELETE FROM performance_rollups")
    with session_factory(make_engine(url))() as db:
        days = db.execute(select(Session.id, Session.date).where(Session.run_name == run)).all()
    reported = [f"{(metrics['win_rate_pct'] or 0) / 100:.0%}" for metrics in (
        _report(capsys, url, run, "--start", str(day), "--end", str(day))["metrics"]
        for _, day in days)]
    assert len(days) >= 4
    for database in (url, unrolled):
        shown_rates = []
        for session_id, _ in days:
            at = _app(database, monkeypatch)
            at.session_state[SESSION_PICK_KEY] = session_id
            at.run()
            shown_rates.append({m.label: m.value for m in at.metric}["Win rate"])
        assert shown_rates == reported, database
