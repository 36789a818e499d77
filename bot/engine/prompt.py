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
_DIGITS = b"0123456789"
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
    encoded = text.encode()  # ASCII digits are single bytes in UTF-8, and bytes count fast
    digits = len(encoded) - len(encoded.translate(None, _DIGITS))
    return math.ceil(digits + (len(text) - digits) / 4)


@cache
def load_template(name: str, version: str = PROMPT_VERSION) -> Template:
    """A template file; a missing version is an error, never a silent fallback."""
    return Template((PROMPTS_DIR / f"{name}_{version}.md").read_text(encoding="utf-8"))


@cache
def _template_parts(name: str, version: str) -> tuple[tuple[str, str | None], ...]:
    """A template as (literal text, placeholder or None) pairs, for ``_fill``."""
    template = load_template(name, version)
    text, parts, at = template.template, [], 0
    for match in template.pattern.finditer(text):
        literal = text[at:match.start()]
        at = match.end()
        if match.group("escaped") is not None:
            parts.append((literal + template.delimiter, None))
        elif match.group("invalid") is not None:
            raise ValueError(f"invalid placeholder in {name}_{version}.md at {match.start()}")
        else:
            parts.append((literal, match.group("named") or match.group("braced")))
    parts.append((text[at:], None))
    return tuple(parts)


def _fill(name: str, version: str, values: dict[str, str]) -> str:
    """``load_template(name, version).substitute(values)``, without its regular-expression
    pass: the user prompt is rendered several times per decision while the budget cuts."""
    return "".join([literal if key is None else literal + str(values[key])
                    for literal, key in _template_parts(name, version)])


def system_prompt(settings: Settings, *, tools: bool = False,
                  version: str = PROMPT_VERSION) -> str:
    return _system(settings.entry_value_pct, settings.max_order_value, tools, version)[0]


@lru_cache(maxsize=64)
def _system(entry_value_pct: float, max_order_value: float, tools: bool,
            version: str) -> tuple[str, int]:
    """The system prompt and its tokens: the same text at every decision of a bot."""
    tools_text = load_template("tools", version).template.strip() if tools else ""
    text = _fill("system", version, {
        "version": version,
        "entry_value_pct": _num(entry_value_pct),
        "max_order_value": _num(max_order_value),
        "tools": tools_text,
    }).strip()
    return text, estimate_tokens(text)


@dataclass
class _Series:
    label: str  # "BTC/USDT 5m"
    lines: tuple[str, ...]  # oldest first
    costs: tuple[int, ...]  # tokens of each line with its newline
    dropped: int = 0  # the oldest lines cut to fit the budget

    @property
    def shown(self) -> tuple[str, ...]:
        return self.lines[self.dropped:]


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
    system, system_tokens = _system(settings.entry_value_pct, settings.max_order_value, tools,
                                    version)
    series = [
        _Series(f"{symbol} {tf}", *_series_lines(f"{symbol} {tf}", candle_columns(view, tf)))
        for symbol, view in context.markets.items()
        for tf in settings.timeframes
    ]
    trades = [_trade_line(t) for t in context.recent_trades]
    dropped_trades = 0
    fixed = _fixed_parts(context, settings)
    base = system_tokens + estimate_tokens(_render_user(fixed, series, trades, "", version))
    excess = base + NOTE_RESERVE_TOKENS - budget

    def drop_candles(floor: int) -> None:
        """Cut oldest candles while over budget, always from the longest series (the first
        of equals), leaving at least ``floor``: level by level, which is that order."""
        nonlocal excess
        if excess <= 0 or not series:
            return
        for level in range(max(len(s.lines) - s.dropped for s in series), floor, -1):
            for s in series:
                if len(s.lines) - s.dropped == level:
                    excess -= s.costs[s.dropped]
                    s.dropped += 1
                    if excess <= 0:
                        return

    for _ in range(5):  # estimates per line are approximate: re-measure and cut again
        drop_candles(MIN_CANDLES_BEFORE_TRADES)
        while excess > 0 and trades:
            excess -= _line_tokens(trades.pop(0)) + 1
            dropped_trades += 1
        drop_candles(0)
        cut = [f"{s.label}: {s.dropped} oldest candles" for s in series if s.dropped]
        if dropped_trades:
            cut.append(f"{dropped_trades} oldest trades")
        note = f"Omitted to fit the token budget: {'; '.join(cut)}." if cut else ""
        user = _render_user(fixed, series, trades, note, version)
        tokens = system_tokens + estimate_tokens(user)
        excess = tokens - budget
        if excess <= 0 or not (trades or any(s.shown for s in series)):
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
            frames.append((f"{symbol} {tf}", [
                _indicator_line(tf, summary.get("trend"),
                                tuple(summary.get(key) for key in PROMPT_INDICATORS)),
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


@lru_cache(maxsize=256)
def _indicator_line(tf: str, trend: Any, values: tuple) -> str:
    """A higher timeframe's line repeats until its next candle closes: render it once."""
    return (f"{tf} indicators: trend={trend} "
            + " ".join(f"{k}={_num(v, digits=5)}" for k, v in zip(PROMPT_INDICATORS, values,
                                                                  strict=True)))


def _render_user(fixed: _Fixed, series: list[_Series], trades: list[str], note: str,
                 version: str) -> str:
    by_label = {s.label: s for s in series}
    blocks = []
    for head, frames in fixed.markets:
        parts = [head]
        for label, lines in frames:
            parts.extend(lines)
            if label is not None:
                parts.extend(by_label[label].shown)
        blocks.append("\n".join(parts))
    return _fill("context", version, {
        "version": version,
        **fixed.fields,
        "markets": "\n\n".join(blocks) or "none",
        "trades": "\n".join(trades) or "none",
        "omitted": note,
    }).strip()


def _series_lines(label: str,
                  columns: CandleColumns | None) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The newest ``MAX_PROMPT_CANDLES`` candle lines and their costs (tokens + newline).

    A series only changes when a candle closes: the last lines of each ``label`` are kept
    with the candles' exact bytes, and reused whole when the bytes are the same (a higher
    timeframe between closes) or all but the newest line when the window moved by one
    candle. Timestamps held as Python objects (a frame with aware stamps) have no such
    bytes and are rendered each time.
    """
    if columns is None:
        return (), ()
    arrays = (columns.stamps, columns.open, columns.high, columns.low, columns.close,
              columns.volume)
    if any(values.dtype.hasobject for values in arrays):
        return _render_lines(columns, MAX_PROMPT_CANDLES)
    key = tuple((values.dtype.str, values[-MAX_PROMPT_CANDLES:].tobytes()) for values in arrays)
    last = _LAST_SERIES.get(label)
    if last is not None and last[0] == key:
        return last[1], last[2]
    if last is not None and len(last[1]) == MAX_PROMPT_CANDLES and _moved_by_one(last[0], key):
        line, cost = _render_lines(columns, 1)
        found = last[1][1:] + line, last[2][1:] + cost
    else:
        found = _render_lines(columns, MAX_PROMPT_CANDLES)
    _LAST_SERIES[label] = (key, *found)
    return found


_LAST_SERIES: dict[str, tuple[tuple, tuple[str, ...], tuple[int, ...]]] = {}


def _moved_by_one(before: tuple, after: tuple) -> bool:
    """Whether ``after`` is ``before`` (a full window) without its oldest candle, plus a
    newer one."""
    for (dtype, old), (new_dtype, new) in zip(before, after, strict=True):
        size = len(old) // MAX_PROMPT_CANDLES
        if dtype != new_dtype or len(new) != len(old) or old[size:] != new[:-size]:
            return False
    return True


def _render_lines(columns: CandleColumns,
                  limit: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    lines = tuple(_candle_line(row) for row in _tail_rows(columns, limit))
    return lines, tuple(_line_tokens(line) + 1 for line in lines)


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
    return _trade_line_of(tuple(map(trade.get, _TRADE_KEYS)))


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
