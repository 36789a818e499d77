"""Render a ``DecisionContext`` into the prompt both engines record, within a token budget.

The template files in ``prompts/`` are versioned (``system_v1.md``...) and the version is
written into the prompt, so any trace says which wording produced it. When the context does
not fit the budget, the oldest candles and then the oldest trades are dropped first (the
newest data matters most to a decision), and what was dropped is both stated in the prompt
and returned, so the trace shows the engine decided on a partial view.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd

from bot.config import Settings
from bot.engine import indicators
from bot.engine.base import DecisionContext, candle_columns
from db.candles import CandleColumns

PROMPT_VERSION = "v1"
PROMPTS_DIR = Path(__file__).with_name("prompts")
MAX_PROMPT_CANDLES = 40  # per symbol and timeframe, before the budget cuts
MIN_CANDLES_BEFORE_TRADES = 3  # candles kept per series before trades start being cut
NOTE_RESERVE_TOKENS = 60  # room for the "omitted" note itself
_NO_DIGITS = str.maketrans("", "", "0123456789")
# Digits are a token each: the prompt shows the indicators a decision turns on, at five
# significant digits; the summary's other values (macd line, bb_mid...) stay out.
PROMPT_INDICATORS = ("ema_fast", "ema_slow", "rsi", "rsi_prev", "macd_hist", "macd_hist_prev",
                     "bb_lower", "bb_upper", "atr")


@dataclass
class RenderedPrompt:
    system: str
    user: str
    version: str
    tokens: int
    cut: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Both parts, as a trace records them."""
        return f"{self.system}\n\n{self.user}"


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` for Gemini-family tokenizers.

    They split numbers into single digits, and a trading prompt is mostly numbers, so a
    digit counts as one token and everything else as a quarter: chars/4 alone would
    undercount a candle table by half.
    """
    digits = len(text) - len(text.translate(_NO_DIGITS))
    return math.ceil(digits + (len(text) - digits) / 4)


@cache
def load_template(name: str, version: str = PROMPT_VERSION) -> Template:
    """A template file; a missing version is an error, never a silent fallback."""
    return Template((PROMPTS_DIR / f"{name}_{version}.md").read_text(encoding="utf-8"))


def system_prompt(settings: Settings, *, tools: bool = False,
                  version: str = PROMPT_VERSION) -> str:
    tools_text = load_template("tools", version).template.strip() if tools else ""
    return load_template("system", version).substitute(
        version=version,
        entry_value_pct=_num(settings.entry_value_pct),
        max_order_value=_num(settings.max_order_value),
        tools=tools_text,
    ).strip()


@dataclass
class _Series:
    label: str  # "BTC/USDT 5m"
    lines: list[str]  # oldest first
    dropped: int = 0


def render_prompt(
    context: DecisionContext,
    settings: Settings,
    *,
    tools: bool = False,
    budget: int | None = None,
    version: str = PROMPT_VERSION,
) -> RenderedPrompt:
    """System and user prompt for ``context``, cut oldest-first to fit ``budget`` tokens."""
    budget = budget or settings.prompt_token_budget
    system = system_prompt(settings, tools=tools, version=version)
    series = [
        _Series(f"{symbol} {tf}", [_candle_line(row) for row in
                                   _tail_rows(candle_columns(view, tf), MAX_PROMPT_CANDLES)])
        for symbol, view in context.markets.items()
        for tf in settings.timeframes
    ]
    trades = [_trade_line(t) for t in context.recent_trades]
    dropped_trades = 0
    fixed = _fixed_parts(context, settings)
    base = estimate_tokens(system) + estimate_tokens(_render_user(context, fixed, series,
                                                                  trades, "", version))
    excess = base + NOTE_RESERVE_TOKENS - budget
    costs = {id(s): [_line_tokens(line) + 1 for line in s.lines] for s in series}

    def drop_candle(floor: int) -> bool:
        nonlocal excess
        longest = max(series, key=lambda s: len(s.lines), default=None)
        if longest is None or len(longest.lines) <= floor:
            return False
        longest.lines.pop(0)
        excess -= costs[id(longest)].pop(0)
        longest.dropped += 1
        return True

    for _ in range(5):  # estimates per line are approximate: re-measure and cut again
        while excess > 0 and drop_candle(MIN_CANDLES_BEFORE_TRADES):
            pass
        while excess > 0 and trades:
            excess -= estimate_tokens(trades.pop(0)) + 1
            dropped_trades += 1
        while excess > 0 and drop_candle(0):
            pass
        cut = [f"{s.label}: {s.dropped} oldest candles" for s in series if s.dropped]
        if dropped_trades:
            cut.append(f"{dropped_trades} oldest trades")
        note = f"Omitted to fit the token budget: {'; '.join(cut)}." if cut else ""
        user = _render_user(context, fixed, series, trades, note, version)
        tokens = estimate_tokens(system) + estimate_tokens(user)
        excess = tokens - budget
        if excess <= 0 or not (trades or any(s.lines for s in series)):
            break
    if tokens > budget:
        cut.append(f"still {tokens - budget} tokens over the budget of {budget}")
    return RenderedPrompt(system=system, user=user, version=version, tokens=tokens, cut=cut)


def estimate_input_tokens(context: DecisionContext, settings: Settings, *,
                          tools: bool = False) -> int:
    """Input tokens one decision would send, for benches and cost forecasts."""
    return render_prompt(context, settings, tools=tools).tokens


@dataclass
class _Fixed:
    """The parts of the user prompt that budget cuts never change, rendered once."""

    fields: dict[str, str]
    # per symbol: the head line, then per timeframe (label, lines before its candles) or
    # (None, a line saying there are none)
    markets: list[tuple[str, list[tuple[str | None, list[str]]]]]


def _fixed_parts(context: DecisionContext, settings: Settings) -> _Fixed:
    markets = []
    for symbol, view in context.markets.items():
        head = (f"### {symbol} last={_num(view.last)} bid={_num(view.bid)} "
                f"ask={_num(view.ask)} spread%={_num(view.spread_pct)} "
                f"book_imbalance={_num(view.ob_imbalance)}")
        frames: list[tuple[str | None, list[str]]] = []
        for tf in settings.timeframes:
            columns = candle_columns(view, tf)
            if columns is None or not len(columns):
                frames.append((None, [f"{tf}: no closed candles"]))
                continue
            summary = indicators.summary(columns)
            shown = {key: _num(summary.get(key), digits=5) for key in PROMPT_INDICATORS}
            frames.append((f"{symbol} {tf}", [
                f"{tf} indicators: trend={summary.get('trend')} "
                + " ".join(f"{k}={v}" for k, v in shown.items()),
                f"{tf} candles:"]))
        markets.append((head, frames))
    fields = {
        "now": _time(context.now),
        "equity": _num(context.equity),
        "quote_balance": _num(context.quote_balance),
        "stats": _compact(context.stats),
        "positions": _rows(context.positions, ("symbol", "quantity", "avg_price")),
        "open_orders": _rows(context.open_orders, ("order_id", "symbol", "side", "type",
                                                   "price", "amount", "remaining")),
        "open_plans": _rows(context.open_plans, ("id", "symbol", "side", "status",
                                                 "entry_price", "stop_price", "target_price",
                                                 "size", "reason")),
    }
    return _Fixed(fields=fields, markets=markets)


def _render_user(context: DecisionContext, fixed: _Fixed, series: list[_Series],
                 trades: list[str], note: str, version: str) -> str:
    by_label = {s.label: s for s in series}
    blocks = []
    for head, frames in fixed.markets:
        parts = [head]
        for label, lines in frames:
            parts.extend(lines)
            if label is not None:
                parts.extend(by_label[label].lines)
        blocks.append("\n".join(parts))
    return load_template("context", version).substitute(
        version=version,
        **fixed.fields,
        markets="\n\n".join(blocks) or "none",
        trades="\n".join(trades) or "none",
        omitted=note,
    ).strip()


def _tail_rows(columns: CandleColumns | None, limit: int) -> list[tuple]:
    """The newest ``limit`` candles as tuples, sliced from the columns."""
    if columns is None:
        return []
    return list(zip(*(values[-limit:].tolist() for values in
                      (columns.stamps, columns.open, columns.high, columns.low, columns.close,
                       columns.volume)), strict=True))


@lru_cache(maxsize=4096)
def _line_tokens(line: str) -> int:
    """Candle lines repeat from one decision to the next: measure each once."""
    return estimate_tokens(line)


@lru_cache(maxsize=4096)
def _candle_line(row: tuple) -> str:
    """One closed candle as a line; closed candles never change, so lines are cached."""
    ts, *prices, volume = row
    return ",".join([_time(ts, short=True), *(_num(v) for v in prices),
                     _num(volume, digits=4)])


_TRADE_KEYS = ("timestamp", "symbol", "action", "quantity", "price", "fee", "realized_pnl",
               "plan_id", "reason")


def _trade_line(trade: dict[str, Any]) -> str:
    return _trade_line_of(tuple(trade.get(k) for k in _TRADE_KEYS))


@lru_cache(maxsize=1024)
def _trade_line_of(values: tuple) -> str:
    """Fills never change and the same twenty recur at every decision: render each once."""
    return _compact(dict(zip(_TRADE_KEYS, values, strict=True)))


def _rows(items: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    if not items:
        return "none"
    return "\n".join(_compact({k: item.get(k) for k in keys}) for item in items)


def _compact(data: dict[str, Any]) -> str:
    """key=value pairs; reasons are quoted with JSON so they cannot break the layout."""
    parts = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, str):
            text = json.dumps(value[:200], ensure_ascii=False)
        elif isinstance(value, datetime | pd.Timestamp):
            text = _time(value)
        else:
            text = _num(value)
        parts.append(f"{key}={text}")
    return " ".join(parts) or "none"


def _num(value: Any, *, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "-"
    return f"{float(value):.{digits}g}"


def _time(value: Any, *, short: bool = False) -> str:
    if isinstance(value, datetime):  # pd.Timestamp too: skip building another one
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")
