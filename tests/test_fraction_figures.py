"""A BTC-quoted market's sums and prices are fractions of a coin: ETH/BTC trades near 0.05
and a 1 BTC account's PnL and fees are thousandths. Shown to two decimals they read 0.05 and
0.00, whatever they are; every text and page shows them to four significant digits."""

from __future__ import annotations

import json
import re

import pytest

from bot.__main__ import main
from bot.model.figures import figure
from bot.model.performance import METRIC_LABELS, shown
from bot.replay import ReplayArgs, run_replay
from bot.report import as_text
from tests.conftest import candle_file


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0.00"), (16_727.3, "16,727.30"), (-1.5, "-1.50"), (0.35, "0.35"),
    (0.0535123, "0.05351"), (-0.00123456, "-0.001235"), (0.00000812, "0.00000812"),
    (0.999999, "1.00"), (0.1, "0.10"),
])
def test_a_figure_keeps_four_significant_digits_below_one(value: float, text: str) -> None:
    assert figure(value) == text


@pytest.mark.parametrize(("key", "value", "text"), [
    ("total_return_pct", 0.004, "0.004 %"), ("total_return_pct", -0.00123, "-0.0012 %"),
    ("max_drawdown_pct", 0.0000456, "0.000046 %"), ("total_return_pct", 0.0, "0.00 %"),
    ("exposure_time_pct", 12.3456, "12.35 %"), ("fees_share_of_gross_pct", 0.5, "0.50 %"),
    ("total_return_pct", 1234.5, "1,234.50 %"),
])
def test_a_small_percentage_shows_its_significant_digits(key: str, value: float,
                                                        text: str) -> None:
    """A return of 0.004 % read 0.00 %, as if nothing had moved: below what two decimals
    show, a percentage keeps two significant digits."""
    assert shown(key, value) == text


def test_the_reports_small_returns_are_not_zero() -> None:
    """The text report's metrics and its per-month returns, through the shared formatter."""
    text = as_text({"metrics": {"total_return_pct": 0.004}, "by_symbol": [],
                    "by_month": [{"period": "2026-11", "return_pct": -0.0031}]})
    assert re.search(r"Total return\s+0\.004 %", text), text
    assert "2026-11  -0.0031 %" in text, text


def test_a_btc_quoted_runs_report_shows_its_sums_to_four_digits(tmp_path, capsys) -> None:
    """Every sum of the text report (equity, PnL, fees, averages) is the JSON report's
    figure to four significant digits."""
    eth = candle_file("ETH_BTC-5m.csv")
    cut = tmp_path / "ETH_BTC-5m.csv"
    cut.write_text("".join(eth.read_text().splitlines(keepends=True)[:1601]))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    summary = run_replay(ReplayArgs([cut], url, balance=1.0), progress=False)
    assert summary["round_trips"] >= 3
    assert main(["report", "--db", url, "--run", summary["run_name"], "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert main(["report", "--db", url, "--run", summary["run_name"]]) == 0
    text = capsys.readouterr().out
    sums = [key for key, (_, unit) in METRIC_LABELS.items()
            if unit == "quote" and metrics.get(key)]
    assert {"net_pnl", "fees", "avg_win", "final_equity"} <= set(sums)
    for key in sums:
        shown = re.search(rf"^{re.escape(METRIC_LABELS[key][0])}\s+(\S+)$", text, re.M)
        assert shown is not None, (key, text)
        assert float(shown.group(1).replace(",", "")) == pytest.approx(
            metrics[key], rel=5e-4), (key, shown.group(1), metrics[key])
