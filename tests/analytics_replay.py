"""One multi-day replay of the shared BTC file (the first 1,200 candles: four days), made
once per test run for the round trip, report and Performance tests, which only read it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.replay import ReplayArgs, run_replay
from tests.conftest import candle_file

CANDLES = 1200


@dataclass(frozen=True)
class Replayed:
    url: str
    run_name: str
    summary: dict


@pytest.fixture(scope="session")
def analytics_replay(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    folder = tmp_path_factory.mktemp("analytics")
    cut = folder / "BTC_USDT-5m.csv"
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:CANDLES + 1]))
    url = f"sqlite:///{folder / 'replays.db'}"
    summary = run_replay(ReplayArgs([cut], url), progress=False)
    return Replayed(url, summary["run_name"], summary)
