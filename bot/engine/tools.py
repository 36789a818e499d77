"""The read-only tools an LLM may call before it decides, answered from the context alone.

Declared once as JSON schema; each provider adapter turns the declarations into its own
shape. Every answer is bounded in rows and bytes and holds nothing newer than the context.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from bot.engine import indicators
from bot.model.decision import DecisionContext

TOOL_MAX_ROWS = 100
DEFAULT_ROWS = 50  # candles when the model gives no limit
TOOL_MAX_BYTES = 8000

_SYMBOL = {"type": "string", "description": "A configured symbol, BTC/USDT"}
_TIMEFRAME = {"type": "string", "description": "A configured timeframe, 5m"}


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # a JSON schema of type object


TOOLS = (
    ToolSpec("get_candles", "More closed candles (newest last) for a symbol and timeframe.",
             {"type": "object", "required": ["symbol", "timeframe"],
              "properties": {"symbol": _SYMBOL, "timeframe": _TIMEFRAME,
                             "limit": {"type": "integer", "description": "max 100"}}}),
    ToolSpec("get_order_book", "Top of the order book: bid, ask, spread and imbalance.",
             {"type": "object", "required": ["symbol"], "properties": {"symbol": _SYMBOL}}),
    ToolSpec("get_indicators",
             "Recent indicator values (EMA, RSI, MACD, Bollinger, ATR), newest last.",
             {"type": "object", "required": ["symbol", "timeframe"],
              "properties": {"symbol": _SYMBOL, "timeframe": _TIMEFRAME}}),
)


def run_tool(context: DecisionContext, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Answer one tool call from the context alone: read-only, bounded, newest data kept."""
    symbol = str(args.get("symbol", ""))
    view = context.markets.get(symbol)
    if view is None:
        raise KeyError(f"unknown symbol {symbol!r}; known: {', '.join(context.markets)}")
    if name == "get_order_book":
        return {"symbol": symbol, "last": view.last, "bid": view.bid, "ask": view.ask,
                "spread_pct": view.spread_pct, "imbalance": view.ob_imbalance}
    timeframe = str(args.get("timeframe", ""))
    frame = view.candles.get(timeframe)
    if frame is None:
        raise KeyError(f"unknown timeframe {timeframe!r}; known: {', '.join(view.candles)}")
    if name == "get_candles":
        limit = _limit(args.get("limit"))
        rows = [[ts.isoformat(), o, h, lo, c, v] for ts, o, h, lo, c, v in
                frame.tail(limit).itertuples(index=False, name=None)]
        return _bounded({"symbol": symbol, "timeframe": timeframe,
                         "columns": ["time", "open", "high", "low", "close", "volume"]}, rows)
    if name == "get_indicators":
        table = indicators.compute(frame).tail(TOOL_MAX_ROWS)
        columns = ["close", *indicators.COLUMNS]
        rows = [[_clean(v) for v in row] for row in table[columns].itertuples(index=False)]
        return _bounded({"symbol": symbol, "timeframe": timeframe, "columns": columns}, rows)
    raise ValueError(f"unknown tool {name!r}")


def answer_tool(context: DecisionContext, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """``run_tool``, with a bad call answered by its error for the model to read: the
    arguments are whatever the model wrote, and no argument may cost the decision."""
    try:
        return run_tool(context, name, args)
    except (KeyError, ValueError, TypeError) as exc:
        return {"error": str(exc)[:300]}
    except Exception as exc:  # any other failure is the model's to read too
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def _limit(value: Any) -> int:
    """The rows asked for: 50 when the optional limit is left out; a limit that is no
    number (a word, NaN, JSON's 1e999 read as infinity) is an error the model reads."""
    if value is None:
        return DEFAULT_ROWS
    try:
        return max(1, min(int(value), TOOL_MAX_ROWS))
    except (OverflowError, TypeError, ValueError):
        raise ValueError(f"limit {value!r:.40} is not a whole number of rows (max "
                         f"{TOOL_MAX_ROWS})") from None


def _bounded(head: dict[str, Any], rows: list[list[Any]]) -> dict[str, Any]:
    """Drop the oldest rows until the JSON fits TOOL_MAX_BYTES; say how many went."""
    rows = rows[-TOOL_MAX_ROWS:]
    dropped = 0
    while rows and len(json.dumps({**head, "rows": rows})) > TOOL_MAX_BYTES:
        cut = max(1, len(rows) // 10)
        rows, dropped = rows[cut:], dropped + cut
    return {**head, "rows": rows, "omitted_oldest_rows": dropped}


def _clean(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{number:.6g}") if math.isfinite(number) else None
