"""A bot restarted with SYMBOLS that leave out a symbol it still holds is refused at its
start, naming the symbol: it tends only the symbols configured, so it would neither watch
that position's stop, nor close it when told, nor book the sale a close-all makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.engine.schema import Action, ActionType, Decision
from db.commands import enqueue_command
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step


def _scaled_copy(source: Path, target: Path, rows: int, scale: float) -> Path:
    """The first ``rows`` candles of ``source`` with prices divided by ``scale``."""
    header, *lines = source.read_text().splitlines()[:rows + 1]
    scaled = []
    for line in lines:
        when, *prices, volume = line.split(",")
        scaled.append(",".join([when, *(str(float(p) / scale) for p in prices), volume]))
    target.write_text("\n".join([header, *scaled]) + "\n")
    return target


@pytest.fixture
def two_markets(tmp_path: Path) -> list[Path]:
    btc = candle_file("BTC_USDT-5m.csv")
    return [_scaled_copy(btc, tmp_path / "BTC_USDT-5m.csv", 260, 1.0),
            _scaled_copy(btc, tmp_path / "ETH_USDT-5m.csv", 260, 10.0)]


def test_a_restart_that_leaves_out_a_held_symbol_is_refused_naming_it(
        sqlite_url: str, two_markets: list[Path]) -> None:
    buy = Decision(actions=[Action(action=ActionType.BUY, symbol="ETH/USDT", reason="in",
                                   size=0.5)])
    rt = make_runtime(sqlite_url, two_markets, ScriptedEngine([buy]), kind="live",
                      run_name="default")
    step(rt, 3)
    assert rt.book.quantity("ETH/USDT") == pytest.approx(0.5)

    with pytest.raises(ConfigError) as refused:  # the harness starts the runtime it makes
        make_runtime(sqlite_url, two_markets, ScriptedEngine([]), kind="live",
                     run_name="default", SYMBOLS="BTC/USDT")
    said = str(refused.value)
    assert "invalid setting SYMBOLS: it leaves out ETH/USDT" in said, said

    # the held symbol kept (in another order) starts, and closes when told
    kept = make_runtime(sqlite_url, two_markets, ScriptedEngine([]), kind="live",
                        run_name="default", SYMBOLS="ETH/USDT,BTC/USDT")
    with kept.db() as db:
        enqueue_command(db, "close", "ETH/USDT", "default")
    step(kept, 2)
    assert kept.book.quantity("ETH/USDT") == pytest.approx(0.0)
