"""The Round trips view and the Performance page in Chromium, over a four-day replay: the
figures ``python -m bot report`` prints, drawn charts, a trip's decision opened in place and
the CSV download."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from tests.analytics_replay import analytics_replay  # noqa: F401  (a fixture)
from tests.test_console_browser import (  # noqa: F401  (browser and page are fixtures)
    IDLE_JS,
    OUTPUT,
    Console,
    _no_exception,
    _settled,
    _start_console,
    _stop_console,
    browser,
    page,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def replay_console(browser, analytics_replay, tmp_path_factory) -> Iterator[Console]:  # noqa: F811
    server = _start_console(tmp_path_factory.mktemp("analytics-console"), analytics_replay.url)
    yield server
    _stop_console(server)


def _report(capsys, replayed) -> dict:
    assert main(["report", "--db", replayed.url, "--run", replayed.run_name, "--json",
                 "--start", "2023-01-03", "--end", "2023-01-06"]) == 0
    return json.loads(capsys.readouterr().out)


def _metric(page, label: str) -> str:  # noqa: F811
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_round_trips_view(replay_console, page, analytics_replay, capsys) -> None:  # noqa: F811
    report = _report(capsys, analytics_replay)
    page.goto(f"{replay_console.url}/trades")
    page.get_by_text("Download CSV").first.wait_for()
    page.wait_for_function(IDLE_JS)
    page.locator('[data-testid="stButtonGroup"]').get_by_text("Round trips", exact=True).click()
    page.get_by_text("Download round trips CSV").wait_for()
    _settled(page)
    assert _metric(page, "Round trips closed") == str(report["metrics"]["round_trips"])
    assert _metric(page, "Net PnL") == f"{report['metrics']['net_pnl']:,.2f}"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "round-trips.png"))

    with page.expect_download() as download:
        page.get_by_text("Download round trips CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == len(report["round_trips"])
    assert [float(r["net_pnl"]) for r in rows] == pytest.approx(
        [t["net_pnl"] for t in report["round_trips"]])

    # a picked trip offers the decisions that opened and closed it, opened in this tab
    trip = report["round_trips"][1]
    grid = page.locator('[data-testid="stDataFrame"]').first
    box = grid.bounding_box()
    assert box is not None
    header, row = 35, 35  # the grid's header and row heights (px)
    page.mouse.click(box["x"] + 18, box["y"] + header + row * 1.5)  # its row marker
    page.get_by_role("button", name=f"Open the decision that closed it "
                                    f"(#{trip['close_trace_id']})").click()
    page.get_by_role("heading", name="Decisions").wait_for()
    assert f"trace={trip['close_trace_id']}" in page.url
    page.get_by_text(re.compile(rf"^#{trip['close_trace_id']} · ")).first.wait_for()
    _no_exception(page, replay_console)


def test_performance_page_over_the_replays_days(replay_console, page, analytics_replay,  # noqa: F811
                                                capsys) -> None:
    metrics = _report(capsys, analytics_replay)["metrics"]
    page.goto(f"{replay_console.url}/performance")
    page.get_by_text("Returns by month").first.wait_for()
    _settled(page)
    for label, key, text in (("Total return", "total_return_pct", f"{metrics['total_return_pct']:,.2f} %"),
                             ("Max drawdown", "max_drawdown_pct", f"{metrics['max_drawdown_pct']:,.2f} %"),
                             ("Win rate", "win_rate_pct", f"{metrics['win_rate_pct']:,.2f} %")):
        assert _metric(page, label) == text, key
    charts = page.locator(".js-plotly-plot")
    charts.nth(1).wait_for()  # plotly draws once its code has loaded, after the run
    _settled(page)
    assert charts.count() == 2
    equity, months = charts.nth(0), charts.nth(1)
    equity.scroll_into_view_if_needed()
    assert equity.locator(".scatterlayer .trace").count() == 2  # equity and underwater
    months.scroll_into_view_if_needed()
    months.get_by_text(f"{metrics['total_return_pct']:+.2f} %").wait_for()  # January's cell
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "performance.png"))
    _no_exception(page, replay_console)
