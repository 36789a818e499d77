"""Freqtrade's backtest of an EMA/RSI strategy on a candle file, end to end, offline.

Run by ``bench/replay_bench.py --cli --freqtrade PYTHON`` with an interpreter that has
freqtrade installed (it is not one of Tradedesk's dependencies), so both figures come from
the same run on the same machine:

    python -m venv /tmp/ft && /tmp/ft/bin/pip install freqtrade
    .venv/bin/python bench/replay_bench.py --case btc --cli --freqtrade /tmp/ft/bin/python

The strategy is the rules engine's idea in freqtrade's terms (EMA 12/26 trend, RSI 14 not
overbought, a 2 % stop), not a copy of its decisions: the comparison is of the two tools'
cost over the same candles. Freqtrade reads the exchange's markets at start; they come from
the recorded Binance markets under ``../shared/fixtures/ccxt``, so nothing goes to the
network. Prints freqtrade's own report, then one line: ``freqtrade end to end: S s``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()  # before the imports: they are part of the user's wait

import ccxt  # noqa: E402
import ccxt.async_support as ccxt_async  # noqa: E402

STRATEGY = '''
import talib.abstract as ta
from freqtrade.strategy import IStrategy


class EmaRsi(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 100}
    stoploss = -0.02
    startup_candle_count = 200

    def populate_indicators(self, df, metadata):
        df["ema_fast"] = ta.EMA(df, timeperiod=12)
        df["ema_slow"] = ta.EMA(df, timeperiod=26)
        df["rsi"] = ta.RSI(df, timeperiod=14)
        return df

    def populate_entry_trend(self, df, metadata):
        df.loc[(df["ema_fast"] > df["ema_slow"]) & (df["rsi"] < 70), "enter_long"] = 1
        return df

    def populate_exit_trend(self, df, metadata):
        df.loc[(df["ema_fast"] < df["ema_slow"]) | (df["rsi"] > 75), "exit_long"] = 1
        return df
'''


def recorded_markets(path: Path) -> dict:
    """The recorded spot markets, their precision as tick sizes (freqtrade reads ccxt's
    TICK_SIZE mode; the recording states decimal places)."""
    return {symbol: market | {"precision": {key: 10 ** -value if isinstance(value, int)
                                            else value
                                            for key, value in market["precision"].items()}}
            for symbol, market in json.loads(path.read_text()).items()
            if market.get("spot") and market.get("precision")}


def offline(markets: dict) -> None:
    """Binance's ``load_markets``, sync and async, served from ``markets``."""
    def load(self, reload=False, params=None):
        self.set_markets(markets)
        return self.markets

    async def load_async(self, reload=False, params=None):
        return load(self, reload, params)

    ccxt.binance.load_markets = load
    ccxt_async.binance.load_markets = load_async


def backtest(candles: Path, markets: Path) -> None:
    """Freqtrade's CLI backtest of ``candles`` (a ``PAIR-5m.csv`` of ours) in a scratch user
    folder, the exchange's markets read from ``markets``."""
    offline(recorded_markets(markets))
    from freqtrade.main import main  # freqtrade's CLI, in this process

    pair = candles.name.split("-")[0]
    with tempfile.TemporaryDirectory(prefix="freqtrade-") as folder:
        root = Path(folder)
        (root / "strategies").mkdir()
        (root / "strategies" / "ema_rsi.py").write_text(STRATEGY)
        data = root / "data" / "binance"
        data.mkdir(parents=True)
        rows = [[int(fields[0]), *map(float, fields[1:])] for fields in
                (line.split(",") for line in candles.read_text().splitlines()[1:])]
        (data / f"{pair}-5m.json").write_text(json.dumps(rows))
        config = {"max_open_trades": 1, "stake_currency": pair.split("_")[1],
                  "stake_amount": 1000, "dry_run": True, "dry_run_wallet": 10000,
                  "timeframe": "5m", "dataformat_ohlcv": "json",
                  "exchange": {"name": "binance", "key": "", "secret": "",
                               "pair_whitelist": [pair.replace("_", "/")]},
                  "pairlists": [{"method": "StaticPairList"}],
                  "entry_pricing": {"price_side": "same"}, "exit_pricing": {"price_side": "same"}}
        (root / "config.json").write_text(json.dumps(config))
        try:
            main(["backtesting", "-c", str(root / "config.json"), "--strategy", "EmaRsi",
                  "--userdir", str(root), "--datadir", str(data), "--export", "none",
                  "--cache", "none"])
        except SystemExit as exc:
            if exc.code:
                raise


if __name__ == "__main__":
    backtest(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"freqtrade end to end: {time.perf_counter() - STARTED:.1f} s")
