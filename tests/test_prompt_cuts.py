"""The budget cuts measured from line sizes give the prompt that rendering each cut gave.

``render_prompt`` renders the user prompt once: every cut on the way is measured from the
sizes of the lines it keeps. Traces record the prompt, so it must equal, byte for byte and
token for token, what the loop that rendered and measured every cut produced (kept below
as the reference), at any budget and with any content: several symbols, a timeframe
without candles, trades whose reasons hold digits and non-ASCII text, plans and positions.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from bot.config import Settings, load_settings
from bot.engine import prompt
from bot.model.candles import CandleColumns, StoredCandles
from bot.model.decision import DecisionContext, MarketView
from tests.conftest import candle_file

NOW = datetime(2024, 1, 2, tzinfo=UTC)


def _reference(context: DecisionContext, settings: Settings, budget: int) -> prompt.RenderedPrompt:
    """``render_prompt`` as it was: each cut rendered whole and measured."""
    version = prompt.PROMPT_VERSION
    system, system_tokens = prompt._system(settings.entry_value_pct, settings.max_order_value,
                                           False, version)
    decimals = prompt._decimals(context, settings)
    series = prompt._candle_series(context, settings, decimals)
    trades = list(prompt._trade_lines(context.recent_trades, decimals,
                                      prompt._day(context.now)).text)
    dropped_trades = 0
    fixed = prompt._fixed_parts(context, settings, decimals)

    def render(note: str) -> str:
        return prompt._render_user(fixed, prompt._markets_text(fixed, series),
                                   "\n".join(trades) or "none", note, version)

    excess = system_tokens + prompt.estimate_tokens(render("")) - budget
    if excess > 0:
        excess += prompt.NOTE_RESERVE_TOKENS

    def drop_candles(floor: int) -> None:
        nonlocal excess
        if excess <= 0 or not series:
            return
        for level in range(max(s.left for s in series), floor, -1):
            for s in series:
                if s.left == level:
                    excess -= prompt.estimate_tokens(s.lines.text[s.dropped]) + 1
                    s.dropped += 1
                    if excess <= 0:
                        return

    for _ in range(5):
        drop_candles(prompt.MIN_CANDLES_BEFORE_TRADES)
        while excess > 0 and trades:
            excess -= prompt.estimate_tokens(trades.pop(0)) + 1
            dropped_trades += 1
        drop_candles(0)
        cut = [f"{s.label}: {s.dropped} oldest candles" for s in series if s.dropped]
        if dropped_trades:
            cut.append(f"{dropped_trades} oldest trades")
        note = f"Omitted to fit the token budget: {'; '.join(cut)}." if cut else ""
        user = render(note)
        tokens = system_tokens + prompt.estimate_tokens(user)
        excess = tokens - budget
        if excess <= 0 or not (trades or any(s.shown for s in series)):
            break
    if tokens > budget:
        cut.append(f"still {tokens - budget} tokens over the budget of {budget}")
    return prompt.RenderedPrompt(system=system, user=user, version=version, tokens=tokens,
                                 cut=cut)


def _columns(frame: pd.DataFrame) -> CandleColumns:
    stamps = pd.to_datetime(frame["timestamp"], unit="ms").to_numpy().astype("datetime64[us]")
    return CandleColumns(stamps, *(frame[c].to_numpy(dtype=float)
                                   for c in ("open", "high", "low", "close", "volume")))


def _trade(index: int) -> dict:
    reasons = ["trend: 5m ema 16715.4/16713.7 rsi 60.414", "stop hit at 16729.6",
               "überkauft — Stopp 1 234,5 € ✓", ""]
    return {"timestamp": NOW - timedelta(minutes=5 * (30 - index)), "symbol": "BTC/USDT",
            "action": "BUY" if index % 2 else "SELL", "quantity": 0.0298896 + index,
            "price": 16729.036 + index, "fee": 0.5, "realized_pnl": -0.25 * index,
            "plan_id": index, "reason": reasons[index % len(reasons)]}


def _context(candles: pd.DataFrame, end: int, trades: int) -> DecisionContext:
    five = candles.iloc[max(0, end - 150):end]
    hour = candles.iloc[max(0, end - 600):end:12]
    btc = MarketView("BTC/USDT", float(five["close"].iloc[-1]), 1.5, 2.5, 0.01, -0.3,
                     StoredCandles({"5m": _columns(five), "1h": _columns(hour)}))
    eth = MarketView("ETH/USDT", float("nan"), None, None, None, None,
                     StoredCandles({"5m": _columns(five.iloc[-7:])}))
    return DecisionContext(
        now=NOW, session_id=1, symbols=["BTC/USDT", "ETH/USDT"],
        markets={"BTC/USDT": btc, "ETH/USDT": eth},
        positions=[{"symbol": "BTC/USDT", "quantity": 0.03, "avg_price": 16700.5}],
        open_orders=[],
        open_plans=[{"id": 7, "symbol": "BTC/USDT", "side": "BUY", "status": "open",
                     "entry_price": 16700.5, "stop_price": 16650.0, "target_price": 16800.0,
                     "size": 0.03, "reason": "oversold bounce ↗ 29.5"}],
        recent_trades=[_trade(i) for i in range(trades)],
        stats={"net_pnl": -7.14, "total_trades": trades, "wins": 3},
        equity=10_000.0, quote_balance=9_000.0)


@pytest.mark.parametrize("trades", [0, 1, 20])
def test_measured_cuts_equal_rendered_cuts(trades: int) -> None:
    candles = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:700]
    settings = load_settings(SYMBOLS="BTC/USDT,ETH/USDT", TIMEFRAMES="5m,1h")
    for end in (700, 20, 0):
        context = _context(candles, max(end, 1), trades)
        if not end:  # no market at all
            context = replace(context, symbols=[], markets={})
        for budget in (*range(150, 4200, 23), 10**6):  # and no cut at all
            got = prompt.render_prompt(context, settings, budget=budget)
            assert got == _reference(context, settings, budget), (end, budget)
            assert got.tokens == (prompt.estimate_tokens(got.system)
                                  + prompt.estimate_tokens(got.user))


def test_a_prompt_that_fits_whole_is_never_cut() -> None:
    """The room kept for the "omitted" note is only wanted once something is omitted: a
    prompt whose every part fits is sent whole, up to its last token of budget."""
    candles = pd.read_csv(candle_file("BTC_USDT-5m.csv")).iloc[:700]
    settings = load_settings(SYMBOLS="BTC/USDT,ETH/USDT", TIMEFRAMES="5m,1h")
    context = _context(candles, 700, 20)
    whole = prompt.render_prompt(context, settings, budget=10**6)
    for budget in range(whole.tokens, whole.tokens + prompt.NOTE_RESERVE_TOKENS + 2):
        assert prompt.render_prompt(context, settings, budget=budget) == whole, budget
    cut = prompt.render_prompt(context, settings, budget=whole.tokens - 1)
    assert cut.cut and cut.tokens <= whole.tokens - 1
