"""Render a ``DecisionContext`` into the prompt both engines record, within a token budget.

The template files in ``prompts/`` are versioned (``system_v2.md``...) and the version is
written into the prompt, so any trace says which wording produced it.

Digits are most of a trading prompt's tokens, so the numbers are encoded compactly: prices
at five significant digits of the symbol's price, one table row per candle with its close
and its high and low as basis points from that close (a candle opens at about the previous
close), volumes at three digits, and the candles' times stated once per table. Each
timeframe shows its indicators on one line and only its newest candles as rows: the
shortest timeframe the last ``BASE_ROWS``, the longer ones the last ``HIGHER_ROWS``. The
longest also sums up all its candles in the context (range, change, mean volume), which the
older candles of every timeframe fall within. Five symbols then fit the default budget
whole.

When the context still does not fit the budget, the oldest candles and then the oldest
trades are dropped first (the newest data matters most to a decision), and what was dropped
is both stated in the prompt and returned, so the trace shows the engine decided on a
partial view.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from bot.config import Settings
from bot.engine import indicators
from bot.model.candles import CandleColumns
from bot.model.decision import DecisionContext, MarketView, candle_columns
from bot.model.timeframes import timeframe_delta

PROMPT_VERSION = "v2"
PROMPTS_DIR = Path(__file__).with_name("prompts")
BASE_ROWS = 12  # candle rows of each symbol's shortest timeframe, before the budget cuts
HIGHER_ROWS = 2  # candle rows of its longer timeframes
PRICE_DIGITS = 5  # significant digits of a symbol's prices, from its last price
MIN_CANDLES_BEFORE_TRADES = 3  # candles kept per series before trades start being cut
NOTE_RESERVE_TOKENS = 60  # room for the "omitted" note itself
REASON_CHARS = 32  # of a trade's or plan's reason: reasons are data, their digits tokens
_DIGITS = b"0123456789"
# Digits are a token each: the prompt shows the indicators a decision turns on; the
# summary's other values (macd line, bb_mid...) stay out.
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
    return _tokens(*_size(text))


def _size(text: str) -> tuple[int, int]:
    """Digits and characters of ``text``: both add up over concatenated pieces, and they
    are all ``estimate_tokens`` reads, so a cut prompt is measured without rendering it."""
    encoded = text.encode()  # ASCII digits are single bytes in UTF-8, and bytes count fast
    return len(encoded) - len(encoded.translate(None, _DIGITS)), len(text)


def _tokens(digits: int, chars: int) -> int:
    """``estimate_tokens`` of a text of that size: ceil(digits + others / 4), in integers."""
    return digits + (chars - digits + 3) // 4


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
    pass: the user prompt is rendered at every decision, and its frame measured too
    (``_UserSize``)."""
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
        "entry_value_pct": _num(entry_value_pct),
        "max_order_value": _num(max_order_value),
        "tools": tools_text,
    }).strip()
    return text, estimate_tokens(text)


@dataclass(frozen=True)
class _Lines:
    """Lines of the prompt, oldest first, with what cutting them needs to know."""

    text: tuple[str, ...]
    costs: tuple[int, ...]  # tokens of each line with its newline, as the cuts count them
    digits: tuple[int, ...]  # ``_size`` of each line with its newline: digits...
    chars: tuple[int, ...]  # ... and characters

    @classmethod
    def of(cls, lines: tuple[str, ...]) -> _Lines:
        sizes = [_line_size(line) for line in lines]
        return cls(lines, tuple(_tokens(*size) + 1 for size in sizes),
                   tuple(digits for digits, _ in sizes), tuple(chars + 1 for _, chars in sizes))

    def moved_by_one(self, newest_two: _Lines) -> _Lines:
        """These lines without their oldest, their newest replaced by ``newest_two`` (the
        newest line changes when the candle after it opens after a gap)."""
        return _Lines(self.text[1:-1] + newest_two.text, self.costs[1:-1] + newest_two.costs,
                      self.digits[1:-1] + newest_two.digits,
                      self.chars[1:-1] + newest_two.chars)


_NO_LINES = _Lines((), (), (), ())


@dataclass
class _Series:
    label: str  # "BTC/USDT 5m"
    lines: _Lines
    dropped: int = 0  # the oldest lines cut to fit the budget

    @property
    def left(self) -> int:
        return len(self.lines.text) - self.dropped

    @property
    def shown(self) -> tuple[str, ...]:
        return self.lines.text[self.dropped:]

    def dropped_size(self) -> tuple[int, int]:
        """``_size`` of the dropped lines with their newlines."""
        return sum(self.lines.digits[:self.dropped]), sum(self.lines.chars[:self.dropped])


def render_prompt(
    context: DecisionContext,
    settings: Settings,
    *,
    tools: bool = False,
    budget: int | None = None,
    version: str = PROMPT_VERSION,
) -> RenderedPrompt:
    """System and user prompt for ``context``, cut oldest-first to fit ``budget`` tokens.

    Each cut is measured from the sizes of the lines it keeps (``_UserSize``): the text is
    rendered once, as finally cut.
    """
    budget = budget or settings.prompt_token_budget
    system, system_tokens = _system(settings.entry_value_pct, settings.max_order_value, tools,
                                    version)
    decimals = _decimals(context, settings)
    series = _candle_series(context, settings, decimals)
    trades = _Series("trades", _trade_lines(context.recent_trades, decimals,
                                            _day(context.now)))
    fixed = _fixed_parts(context, settings, decimals)
    user_size = _UserSize(fixed, series, trades, version)
    excess = system_tokens + user_size.tokens("") - budget
    if excess > 0:  # something goes: keep room for the note that says what
        excess += NOTE_RESERVE_TOKENS

    def drop_candles(floor: int) -> None:
        """Cut oldest candles while over budget, always from the longest series (the first
        of equals), leaving at least ``floor``: level by level, which is that order."""
        nonlocal excess
        if excess <= 0 or not series:
            return
        left = [s.left for s in series]
        for level in range(max(left), floor, -1):
            for index, s in enumerate(series):
                if left[index] == level:
                    excess -= s.lines.costs[s.dropped]
                    s.dropped += 1
                    left[index] -= 1
                    if excess <= 0:
                        return

    rounds = 5  # estimates per line are approximate: re-measure and cut again
    while True:
        rounds -= 1
        drop_candles(MIN_CANDLES_BEFORE_TRADES)
        while excess > 0 and trades.left:
            excess -= trades.lines.costs[trades.dropped]
            trades.dropped += 1
        drop_candles(0)
        cut = [f"{s.label}: {s.dropped} oldest candles" for s in series if s.dropped]
        if trades.dropped:
            cut.append(f"{trades.dropped} oldest trades")
        note = f"Omitted to fit the token budget: {'; '.join(cut)}." if cut else ""
        tokens = system_tokens + user_size.tokens(note)
        excess = tokens - budget
        if rounds == 0 or excess <= 0 or not (trades.left or any(s.left for s in series)):
            break
    if tokens > budget:
        cut.append(f"still {tokens - budget} tokens over the budget of {budget}")
    user = _render_user(fixed, _markets_text(fixed, series), "\n".join(trades.shown) or "none",
                        note, version)
    return RenderedPrompt(system=system, user=user, version=version, tokens=tokens, cut=cut)


def _decimals(context: DecisionContext, settings: Settings) -> dict[str, int | None]:
    """Per symbol, the decimals its prices are shown with (``_price_decimals``)."""
    return {symbol: _price_decimals(view, settings.timeframes)
            for symbol, view in context.markets.items()}


def _candle_series(context: DecisionContext, settings: Settings,
                   decimals: dict[str, int | None]) -> list[_Series]:
    """Per symbol and timeframe, its candle rows, uncut."""
    return [
        _Series(f"{symbol} {tf}", _series_lines(f"{symbol} {tf}", candle_columns(view, tf),
                                                row_limit(tf, settings.timeframes),
                                                decimals[symbol], timeframe_delta(tf)))
        for symbol, view in context.markets.items()
        for tf in settings.timeframes
    ]


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


def row_limit(timeframe: str, timeframes: list[str] | tuple[str, ...]) -> int:
    """Candle rows a timeframe shows: the shortest the most, as its rows are the newest
    detail; a longer one's rows before them are summed up by the longest's range."""
    shortest = min(timeframes, key=timeframe_delta)
    return BASE_ROWS if timeframe == shortest else HIGHER_ROWS


def _price_decimals(view: MarketView, timeframes: list[str]) -> int | None:
    """Decimals that show ``PRICE_DIGITS`` significant digits of the symbol's price (its
    last price, else its newest close); None when it has no price at all."""
    price = view.last
    if not (math.isfinite(price) and price > 0):
        closes = [float(columns.close[-1]) for tf in timeframes
                  if (columns := candle_columns(view, tf)) is not None and len(columns)]
        price = next((close for close in closes if math.isfinite(close) and close > 0), 0.0)
    if not price:
        return None
    return max(0, PRICE_DIGITS - 1 - math.floor(math.log10(price)))


def _fixed_parts(context: DecisionContext, settings: Settings,
                 decimals: dict[str, int | None]) -> _Fixed:
    markets, today = [], _day(context.now)
    longest = max(settings.timeframes, key=timeframe_delta)
    for symbol, view in context.markets.items():
        places = decimals[symbol]
        head = (f"### {symbol} last={_px(view.last, places)} "
                f"spread%={_sig(view.spread_pct, 2)} "
                f"book_imbalance={_sig(view.ob_imbalance, 2)}")
        frames: list[tuple[str | None, list[str]]] = []
        for tf in settings.timeframes:
            columns = candle_columns(view, tf)
            if columns is None or not len(columns):
                frames.append((None, [f"{tf}: no closed candles"]))
                continue
            summary = indicators.summary(columns)
            frames.append((f"{symbol} {tf}", [
                _indicator_text(tf, summary.get("trend"),
                                tuple(map(summary.get, PROMPT_INDICATORS)), places)
                + _window_text(columns, places, today,
                               whole=tf == longest or len(settings.timeframes) == 1)]))
        markets.append((head, frames))
    fields = {
        "now": _time(context.now),
        "equity": _num(context.equity),
        "quote_balance": _num(context.quote_balance),
        "stats": _compact(context.stats, digits=4),
        "positions": "\n".join(f"{p.get('symbol')} {_num(p.get('quantity'))} "
                               f"@{_px(p.get('avg_price'), decimals.get(str(p.get('symbol'))))}"
                               for p in context.positions) or "none",
        "open_orders": _rows(context.open_orders, _ORDER_KEYS, decimals),
        "open_plans": _rows(context.open_plans, _PLAN_KEYS, decimals),
    }
    return _Fixed(fields=fields, markets=markets)


@lru_cache(maxsize=256)
def _indicator_text(tf: str, trend: Any, values: tuple, places: int | None) -> str:
    """A higher timeframe's indicators repeat until its next candle closes: render them
    once. Price levels at the symbol's precision; the oscillators at two digits, the ATR at
    three (stops are placed from it)."""
    ema_fast, ema_slow, rsi, rsi_prev, macd, macd_prev, bb_lower, bb_upper, atr = values
    return (f"{tf}: trend={trend} ema={_px(ema_fast, places)}/{_px(ema_slow, places)} "
            f"rsi={_sig(rsi, 2)}/{_sig(rsi_prev, 2)} macd_hist={_sig(macd, 2)}/"
            f"{_sig(macd_prev, 2)} bb={_px(bb_lower, places)}..{_px(bb_upper, places)} "
            f"atr={_sig(atr, 3)}")


def _window_text(columns: CandleColumns, places: int | None, today: str, *,
                 whole: bool) -> str:
    """The timeframe's mean volume and the time its newest row opened; ``whole``: the
    range of all its candles in the context too (what its older rows said), which the
    longest timeframe alone states: the others' older candles fall within it."""
    volume = f"volume_mean={_volume(float(columns.volume.mean()))}"
    if whole:
        first_open, last_close = float(columns.open[0]), float(columns.close[-1])
        change = (last_close / first_open - 1) * 100 if first_open else math.nan
        volume = (f"{len(columns)} candles: low={_px(float(columns.low.min()), places)} "
                  f"high={_px(float(columns.high.max()), places)} change%={_signed(change)} "
                  + volume)
    return f"; {volume}; rows to {_time(columns.stamps[-1], short=True, today=today)}:"


def _render_user(fixed: _Fixed, markets: str, trades: str, note: str, version: str) -> str:
    return _fill("context", version, {
        "version": version,
        **fixed.fields,
        "markets": markets,
        "trades": trades,
        "omitted": note,
    }).strip()


def _markets_text(fixed: _Fixed, series: list[_Series]) -> str:
    """The markets section: per symbol its head and, per timeframe, the shown candles."""
    by_label = {s.label: s for s in series}
    blocks = []
    for head, frames in fixed.markets:
        parts = [head]
        for label, lines in frames:
            parts.extend(lines)
            if label is not None:
                parts.extend(by_label[label].shown)
        blocks.append("\n".join(parts))
    return "\n\n".join(blocks) or "none"


_STAND_IN = "x"


class _UserSize:
    """``_size`` of the user prompt as cut so far, from the sizes of its pieces.

    The prompt is measured once without its markets, trades and note sections (each in
    place as one character, so ``strip`` cuts the same: no section is empty nor starts or
    ends with whitespace), then each section's size is added: the markets uncut less the
    dropped candle lines (each follows a line of its block: its newline goes with it), the
    trades kept line by line.
    """

    def __init__(self, fixed: _Fixed, series: list[_Series], trades: _Series,
                 version: str) -> None:
        self.fixed, self.trades, self.version = fixed, trades, version
        self.uses = _placeholder_uses("context", version)
        by_label = {s.label: s for s in series}
        # per timeframe shown, the series whose lines it shows
        self.shown = [by_label[label] for _, frames in fixed.markets
                      for label, _ in frames if label is not None]
        self.markets = _markets_size(fixed, by_label)
        self.frames: dict[bool, tuple[int, int]] = {}

    def tokens(self, note: str) -> int:
        digits, chars = self._frame(bool(note))
        markets_digits, markets_chars = self.markets
        for s in self.shown:
            cut_digits, cut_chars = s.dropped_size()
            markets_digits -= cut_digits
            markets_chars -= cut_chars
        for key, (d, n) in (("markets", (markets_digits, markets_chars)),
                            ("trades", self._trades()), ("omitted", _size(note))):
            digits += self.uses[key] * d
            chars += self.uses[key] * n
        return _tokens(digits, chars)

    def _trades(self) -> tuple[int, int]:
        lines, kept = self.trades.lines, self.trades.dropped
        if not self.trades.left:
            return _size("none")
        return sum(lines.digits[kept:]), sum(lines.chars[kept:]) - 1  # no newline after the last

    def _frame(self, noted: bool) -> tuple[int, int]:
        """The prompt's size without its markets, trades and note sections."""
        if noted not in self.frames:
            text = _render_user(self.fixed, _STAND_IN, _STAND_IN, _STAND_IN if noted else "",
                                self.version)
            digits, chars = _size(text)
            stand_ins = self.uses["markets"] + self.uses["trades"] + noted * self.uses["omitted"]
            self.frames[noted] = digits, chars - stand_ins * len(_STAND_IN)
        return self.frames[noted]


def _markets_size(fixed: _Fixed, by_label: dict[str, _Series]) -> tuple[int, int]:
    """``_size(_markets_text(...))`` before any cut, without building that text: the
    blocks' own lines measured together, each candle line with its newline added."""
    if not fixed.markets:
        return _size("none")
    digits, chars = 0, 2 * (len(fixed.markets) - 1)  # "\n\n" between blocks
    for head, frames in fixed.markets:
        own_digits, own_chars = _size("\n".join([head, *(line for _, lines in frames
                                                           for line in lines)]))
        digits += own_digits
        chars += own_chars
        for label, _ in frames:
            if label is not None:
                digits += sum(by_label[label].lines.digits)
                chars += sum(by_label[label].lines.chars)
    return digits, chars


@cache
def _placeholder_uses(name: str, version: str) -> Counter[str]:
    """How often each placeholder appears in a template."""
    return Counter(key for _, key in _template_parts(name, version) if key is not None)


def _series_lines(label: str, columns: CandleColumns | None, limit: int,
                  places: int | None, step: timedelta) -> _Lines:
    """The newest ``limit`` candle lines (``step`` apart unless a line says otherwise).

    A series only changes when a candle closes: the last lines of each ``label`` are kept
    with the candles' exact bytes, and reused whole when the bytes are the same (a higher
    timeframe between closes) or all but the two newest lines when the window moved by one
    candle. Timestamps held as Python objects (a frame with aware stamps) have no such
    bytes and are rendered each time.
    """
    if columns is None:
        return _NO_LINES
    arrays = (columns.stamps, columns.high, columns.low, columns.close, columns.volume)
    dtypes = tuple([values.dtype for values in arrays])
    if any(dtype.hasobject for dtype in dtypes):
        return _render_lines(columns, limit, places, step)
    key = (dtypes, limit, places, step), tuple([values[-limit:].tobytes() for values in arrays])
    last = _LAST_SERIES.get(label)
    if last is not None and last[0] == key:
        return last[1]
    if (last is not None and len(last[1].text) == limit >= 2
            and _moved_by_one(last[0], key, limit)):
        found = last[1].moved_by_one(_render_lines(columns, 2, places, step))
    else:
        found = _render_lines(columns, limit, places, step)
    _LAST_SERIES[label] = (key, found)
    return found


_LAST_SERIES: dict[str, tuple[tuple, _Lines]] = {}


def _moved_by_one(before: tuple, after: tuple, limit: int) -> bool:
    """Whether ``after`` is ``before`` (a full window) without its oldest candle, plus a
    newer one."""
    if before[0] != after[0]:  # the dtypes, the window and the precision
        return False
    for old, new in zip(before[1], after[1], strict=True):
        size = len(old) // limit
        if len(new) != len(old) or old[size:] != new[:-size]:
            return False
    return True


def _render_lines(columns: CandleColumns, limit: int, places: int | None,
                  step: timedelta) -> _Lines:
    return _Lines.of(tuple(_candle_line(row) for row in _tail_rows(columns, limit, places,
                                                                   step)))


def _tail_rows(columns: CandleColumns, limit: int, places: int | None,
               step: timedelta) -> list[tuple]:
    """The newest ``limit`` candles as tuples, sliced from the columns, each with whether
    the next candle opens later than ``step`` after it (a gap), and the precision."""
    stamps = columns.stamps[-limit:]
    if not len(stamps):
        return []
    micros = (stamps.astype("datetime64[us]").astype(np.int64) if stamps.dtype.kind == "M"
              else pd.to_datetime(stamps, utc=True).as_unit("us").asi8)
    gaps = [*(np.diff(micros) != step // timedelta(microseconds=1)).tolist(), False]
    return list(zip(stamps.tolist(), *(values[-limit:].tolist() for values in
                                       (columns.high, columns.low, columns.close,
                                        columns.volume)),
                    gaps, [places] * len(gaps), strict=True))


@lru_cache(maxsize=4096)
def _line_size(line: str) -> tuple[int, int]:
    """Candle and trade lines repeat from one decision to the next: measure each once."""
    return _size(line)


@lru_cache(maxsize=4096)
def _candle_line(row: tuple) -> str:
    """One closed candle as a line: close, high and low in basis points from it, volume;
    the time only before a gap. Closed candles never change, so lines are cached."""
    ts, high, low, close, volume, gap, places = row
    line = ",".join([_px(close, places), _bp(high - close, close), _bp(close - low, close),
                     _volume(volume)])
    return f"@{_time(ts, short=True)} {line}" if gap else line


_TRADE_KEYS = ("timestamp", "symbol", "action", "quantity", "price", "realized_pnl",
               "plan_id", "reason")


def _trade_lines(trades: list[dict[str, Any]], decimals: dict[str, int | None],
                 today: str) -> _Lines:
    """The trades' lines; the same trades as at the previous decision (they change only
    with a fill) reuse its lines: comparing them costs a sixth of looking each line up."""
    global _LAST_TRADES
    last = _LAST_TRADES  # one read: another thread may render too
    if last[0] == trades and last[1] == (decimals, today):
        return last[2]
    lines = _Lines.of(tuple(_trade_line_of(tuple(map(trade.get, _TRADE_KEYS)),
                                           decimals.get(str(trade.get("symbol"))), today)
                            for trade in trades))
    # copies: the caller's may change
    _LAST_TRADES = [dict(trade) for trade in trades], (dict(decimals), today), lines
    return lines


_LAST_TRADES: tuple[list[dict[str, Any]], tuple[dict[str, int | None], str], _Lines] = (
    [], ({}, ""), _NO_LINES)


@lru_cache(maxsize=1024)
def _trade_line_of(values: tuple, places: int | None, today: str) -> str:
    """Fills never change and the same ones recur at every decision: render each once.
    The fee is left out (the session's total is stated), the reason cut short."""
    when, symbol, action, quantity, price, pnl, plan_id, reason = values
    parts = [_time(when, short=True, today=today) if when is not None else "-", str(symbol),
             str(action), f"{_num(quantity, digits=4)}@{_px(price, places)}"]
    if pnl:
        parts.append(f"pnl={_sig(pnl, 3)}")
    if plan_id is not None:
        parts.append(f"plan={_num(plan_id)}")
    if reason:
        parts.append(json.dumps(str(reason)[:REASON_CHARS], ensure_ascii=False))
    return " ".join(parts)


# (name in the prompt, key of the row): names shortened where the section says the rest
_ORDER_KEYS = (("order_id", "order_id"), ("symbol", "symbol"), ("side", "side"),
               ("type", "type"), ("price", "price"), ("amount", "amount"),
               ("remaining", "remaining"))
_PLAN_KEYS = (("plan_id", "id"), ("symbol", "symbol"), ("side", "side"), ("status", "status"),
              ("entry", "entry_price"), ("stop", "stop_price"), ("target", "target_price"),
              ("size", "size"), ("reason", "reason"))
_PRICE_KEYS = frozenset({"price", "entry", "stop", "target"})
# values from the bot's own vocabulary, shown bare: the value names itself
_BARE_KEYS = frozenset({"symbol", "side", "status", "type"})


def _rows(items: list[dict[str, Any]], keys: tuple[tuple[str, str], ...],
          decimals: dict[str, int | None]) -> str:
    if not items:
        return "none"
    return "\n".join(_compact({name: item.get(key) for name, key in keys},
                              places=decimals.get(str(item.get("symbol"))))
                     for item in items)


def _compact(data: dict[str, Any], *, places: int | None = None, digits: int = 6) -> str:
    """key=value pairs, prices at ``places`` decimals and other numbers at ``digits``
    significant digits; reasons are quoted with JSON so they cannot break the layout."""
    parts = []
    for key, value in data.items():
        if value is None:
            continue
        if key in _BARE_KEYS and isinstance(value, str):
            parts.append(value)
            continue
        if key in _PRICE_KEYS and places is not None:
            text = _px(value, places)
        elif type(value) is float:  # most values: spare the checks below
            text = _sig(value, digits)
        elif isinstance(value, str):
            text = json.dumps(value[:REASON_CHARS], ensure_ascii=False)
        elif isinstance(value, datetime):  # pd.Timestamp too
            text = _time(value)
        else:
            text = _sig(value, digits)
        parts.append(f"{key}={text}")
    return " ".join(parts) or "none"


def _px(value: Any, places: int | None) -> str:
    """A price at the symbol's ``places`` decimals, without trailing zeros."""
    if places is None or type(value) is not float or not math.isfinite(value):
        if isinstance(value, int) and not isinstance(value, bool) and places is not None:
            return _px(float(value), places)
        return _num(value)
    text = f"{value:.{places}f}"
    if places:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _bp(distance: float, price: float) -> str:
    """``distance`` in basis points of ``price``, whole."""
    if not (price and math.isfinite(distance) and math.isfinite(price)):
        return "-"
    return str(round(distance / price * 10_000))


def _volume(value: float) -> str:
    """Three significant digits, thousands and more by suffix (1.23k, 45.6M)."""
    if not math.isfinite(value):
        return "-"
    rounded = float(f"{value:.3g}")
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= scale:
            return f"{rounded / scale:.3g}{suffix}"
    return f"{rounded:.3g}"


def _signed(value: float) -> str:
    """A change in percent at two significant digits, its sign always shown."""
    text = _sig(value, 2)
    return f"+{text}" if math.isfinite(value) and value > 0 else text


def _sig(value: Any, digits: int) -> str:
    """``digits`` significant digits, but whole numbers in full rather than with an
    exponent (an ATR of 1210, not 1.21e+03)."""
    if (type(value) in (float, int) and math.isfinite(value)
            and abs(value) >= 10 ** digits):
        return str(round(value))
    return _num(value, digits=digits)


def _num(value: Any, *, digits: int = 6) -> str:
    if type(value) is float:  # most values: the general checks below cost twice the format
        return format(value, _FORMATS[digits]) if math.isfinite(value) else "-"
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "-"
    return format(float(value), _FORMATS[digits])


_FORMATS = {digits: f".{digits}g" for digits in range(1, 18)}


def _time(value: Any, *, short: bool = False, today: str = "") -> str:
    """``YYYY-MM-DD HH:MM`` UTC; ``short`` without the year, and without the day too when
    it is ``today`` (``MM-DD``, the decision's day: the context states it once)."""
    if isinstance(value, datetime):  # pd.Timestamp too: skip building another one
        utc = value if value.tzinfo is None else value.astimezone(UTC)  # naive is UTC
    else:
        utc = pd.Timestamp(value)
        utc = utc.tz_localize("UTC") if utc.tzinfo is None else utc.tz_convert("UTC")
    if not short:
        return utc.strftime("%Y-%m-%d %H:%M")
    text = utc.strftime("%m-%d %H:%M")
    return text[6:] if today and text.startswith(today) else text


def _day(now: datetime) -> str:
    """The ``today`` of ``_time``."""
    return _time(now, short=True)[:5]
