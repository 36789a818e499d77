"""The compact prompt: five symbols with their whole context fit the default budget uncut,
and every candle row it shows says its candle (close at the symbol's precision, high and
low in basis points, volume at three digits), so nothing the model reads is invented.

Candles are the shared BTC file, copied to five price scales as ``bench/tokens_bench.py``
does (digits are tokens, so the scale matters), with a plan and a position on every symbol
and trades whose reasons are full of digits, as the rules engine writes them: the heaviest
context the decide step builds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from bot.config import load_settings
from bot.decision_context import RECENT_TRADES
from bot.engine import prompt
from bot.model.candles import CandleColumns, StoredCandles
from bot.model.decision import DecisionContext, MarketView
from tests.conftest import candle_file

SCALES = {"BTC/USDT": 1.0, "ETH/USDT": 0.07, "SOL/USDT": 0.0021, "XRP/USDT": 2e-5,
          "DOGE/USDT": 25.0}
ROW = re.compile(r"^(@\d\d-\d\d \d\d:\d\d )?([\d.]+),(\d+),(\d+),([\d.]+)([kMB]?)$")


def _columns(frame: pd.DataFrame, scale: float) -> CandleColumns:
    stamps = pd.to_datetime(frame["timestamp"], unit="ms").to_numpy().astype("datetime64[us]")
    return CandleColumns(stamps, *(frame[c].to_numpy(dtype=float) * scale
                                   for c in ("open", "high", "low", "close")),
                         frame["volume"].to_numpy(dtype=float))


def _hours(five: pd.DataFrame) -> pd.DataFrame:
    """1h candles made of the 5m ones."""
    hour = five.assign(hour=five["timestamp"] // 3_600_000 * 3_600_000).groupby("hour")
    return pd.DataFrame({"timestamp": hour["timestamp"].first() // 3_600_000 * 3_600_000,
                         "open": hour["open"].first(), "high": hour["high"].max(),
                         "low": hour["low"].min(), "close": hour["close"].last(),
                         "volume": hour["volume"].sum()}).reset_index(drop=True)


def five_symbols(symbols: dict[str, float] = SCALES) -> tuple[DecisionContext, dict]:
    candles = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:1800]
    five, hour = candles.iloc[-150:], _hours(candles).iloc[-151:-1]  # closed hours only
    now = datetime.fromtimestamp(int(five["timestamp"].iloc[-1]) / 1000, UTC) + timedelta(
        minutes=5)
    markets, series, plans, positions, trades = {}, {}, [], [], []
    for index, (symbol, scale) in enumerate(symbols.items()):
        columns = {"5m": _columns(five, scale), "1h": _columns(hour, scale)}
        series[symbol] = columns
        last = float(columns["5m"].close[-1])
        markets[symbol] = MarketView(symbol, last, last * 0.9999, last * 1.0001, 0.01, 0.12,
                                     StoredCandles(columns))
        positions.append({"symbol": symbol, "quantity": 500 / last, "avg_price": last * 0.998})
        plans.append({"id": 180 + index, "symbol": symbol, "side": "BUY", "status": "open",
                      "entry_price": last * 0.998, "stop_price": last * 0.994,
                      "target_price": last * 1.006, "size": 500 / last,
                      "reason": f"trend: 5m ema {last:.6g}/{last * 0.999:.6g} macd_hist "
                                f"0.000143298 rsi 64.0099, atr {last * 0.0017:.6g}"})
        for side in ("BUY", "SELL"):
            trades.append({"timestamp": now - timedelta(minutes=60 - 5 * len(trades)),
                           "symbol": symbol, "action": side, "quantity": 500 / last,
                           "price": last * 0.997, "fee": 0.5, "realized_pnl": -0.253,
                           "plan_id": 170 + index,
                           "reason": f"trend reversed on 5m: ema {last:.6g}<{last:.6g}"})
    context = DecisionContext(
        now=now, session_id=1, symbols=list(symbols), markets=markets, positions=positions,
        open_orders=[], open_plans=plans, recent_trades=trades[-RECENT_TRADES:],
        stats={"net_pnl": -55.61, "total_fees": 50.73, "total_trades": 103,
               "starting_balance": 9884.12, "gross_pnl": -4.881,
               "start_of_day_equity": 9884.12, "wins": 12, "losses": 37,
               "total_llm_cost": 0.0123},
        equity=9810.09, quote_balance=7310.09)
    return context, series


def _rows_after(text: str, header: str) -> list[str]:
    lines = text[text.index(header) + len(header):].lstrip("\n").splitlines()
    rows = []
    for line in lines:
        if not ROW.match(line):
            break
        rows.append(line)
    return rows


def _check_rows(rows: list[str], columns: CandleColumns, places: int) -> None:
    """Each row is its candle: close rounded to ``places``, high and low within half a
    basis point, volume within its third digit."""
    for row, at in zip(rows, range(len(columns) - len(rows), len(columns)), strict=True):
        marked, close, high_bp, low_bp, volume, suffix = ROW.match(row).groups()
        assert marked is None  # the shared file has no gap here
        want = float(columns.close[at])
        assert float(close) == round(want, places), (row, want)
        assert abs(int(high_bp) - (columns.high[at] - want) / want * 1e4) <= 0.5 + 1e-9
        assert abs(int(low_bp) - (want - columns.low[at]) / want * 1e4) <= 0.5 + 1e-9
        shown = float(volume) * {"": 1, "k": 1e3, "M": 1e6, "B": 1e9}[suffix]
        assert math.isclose(shown, columns.volume[at], rel_tol=5e-3), (row, columns.volume[at])


def test_five_symbols_fit_the_default_budget_whole() -> None:
    settings = load_settings(SYMBOLS=",".join(SCALES), TIMEFRAMES="5m,1h")
    context, series = five_symbols()
    rendered = prompt.render_prompt(context, settings)
    assert rendered.cut == [] and "Omitted" not in rendered.user
    # measured as the budget measures it
    assert rendered.tokens == (prompt.estimate_tokens(rendered.system)
                               + prompt.estimate_tokens(rendered.user))
    assert rendered.tokens <= settings.prompt_token_budget == 3000
    assert rendered == prompt.render_prompt(context, settings, budget=10**6)
    for symbol, columns in series.items():
        block = rendered.user[rendered.user.index(f"### {symbol} "):]
        places = prompt._price_decimals(context.markets[symbol], ["5m", "1h"])
        assert places is not None
        for tf in ("5m", "1h"):
            newest = pd.Timestamp(columns[tf].stamps[-1]).strftime("%H:%M")
            rows = _rows_after(block, f"rows to {newest}:")
            assert len(rows) == prompt.row_limit(tf, settings.timeframes)  # every one shown
            _check_rows(rows, columns[tf], places)
        for plan in context.open_plans:
            if plan["symbol"] == symbol:
                assert f"plan_id={plan['id']} {symbol} BUY open entry=" in rendered.user


def test_one_symbol_is_well_under_the_budget() -> None:
    settings = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h")
    context, _ = five_symbols({"BTC/USDT": 1.0})
    rendered = prompt.render_prompt(context, settings)
    assert rendered.cut == [] and rendered.tokens <= 1200


def test_a_gap_in_the_candles_is_marked_on_the_row_before_it() -> None:
    """Rows count back one timeframe each from the time named; across a missing candle
    the row before the gap carries its own time, so no row is placed at a wrong time."""
    settings = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="5m")
    context, series = five_symbols({"BTC/USDT": 1.0})
    columns = series["BTC/USDT"]["5m"]
    keep = np.ones(len(columns), dtype=bool)
    keep[-4] = False  # the candle three before the newest is missing
    gapped = CandleColumns(*(values[keep] for values in (
        columns.stamps, columns.open, columns.high, columns.low, columns.close,
        columns.volume)))
    view = context.markets["BTC/USDT"]
    context.markets["BTC/USDT"] = MarketView(view.symbol, view.last, view.bid, view.ask,
                                             view.spread_pct, view.ob_imbalance,
                                             StoredCandles({"5m": gapped}))
    text = prompt.render_prompt(context, settings).user
    rows = _rows_after(text, f"rows to {pd.Timestamp(gapped.stamps[-1]).strftime('%H:%M')}:")
    before_gap = pd.Timestamp(gapped.stamps[-4]).strftime("%m-%d %H:%M")
    assert len(rows) == prompt.BASE_ROWS
    assert [row.startswith("@") for row in rows] == [False] * (prompt.BASE_ROWS - 4) + [
        True, False, False, False]
    assert rows[-4].startswith(f"@{before_gap} ")
