"""The Performance page's whole run, for a bot whose trading days are not UTC days.

Sessions are dated in SESSION_TIMEZONE, while the page's date range is in UTC days: a New
York day runs to 05:00 UTC the next day, so a run whose last step falls after midnight UTC
(every New York evening) ended the page's range before it, and the date picker, bounded by
the sessions' dates, could not reach those steps at all. The page's whole run is the
report's whole run.
"""

from __future__ import annotations

import json

import pytest

from bot.__main__ import main
from bot.model.performance import METRIC_LABELS, shown
from bot.replay import ReplayArgs, run_replay
from tests.conftest import candle_file
from tests.test_console_apptest import _app, _console_env, _open  # noqa: F401  (autouse)

pytestmark = pytest.mark.slow
# 199 warm-up candles from 2023-01-02 16:45 UTC, then steps to 2023-01-05 03:00 UTC:
# 22:00 on 2023-01-04 in New York
CANDLES = 700


def test_the_performance_page_of_a_new_york_run_covers_its_last_evening(
        tmp_path, monkeypatch, capsys) -> None:
    cut = tmp_path / "BTC_USDT-5m.csv"
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:CANDLES + 1]))
    url = f"sqlite:///{tmp_path / 'replays.db'}"
    run = run_replay(ReplayArgs([cut], url, overrides={"SESSION_TIMEZONE": "America/New_York"}),
                     progress=False)["run_name"]
    assert main(["report", "--db", url, "--run", run, "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)["metrics"]
    at = _open(_app(url, monkeypatch), "performance")
    on_page = {m.label: m.value for m in at.metric}
    for key in ("total_return_pct", "final_equity", "round_trips", "net_pnl",
                "exposure_time_pct"):
        assert on_page[METRIC_LABELS[key][0]] == shown(key, whole[key]), key
