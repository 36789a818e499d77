"""Tables as an operator reads them: headers in words with their units, figures alike.

Queries name their columns as the store does (``unrealized_pnl``, ``latency_ms``); every page
shows its tables through ``table``, which turns those names into words once, here.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from bot.model.figures import decimals_for

# names the rules below would not word well
HEADINGS = {
    "decision_json": "decision",
    "trace_id": "decision #",
    "avg_price": "average price",
    "cost": "LLM cost (USD)",
    "tokens_in": "tokens in",
    "tokens_out": "tokens out",
    "duration_s": "took (s)",
    "heartbeat_age_s": "heartbeat age (s)",
}
_UNITS = ((re.compile(r"_pct$"), " (%)"), (re.compile(r"_ms$"), " (ms)"),
          (re.compile(r"_s$"), " (s)"), (re.compile(r"_at$"), ""))
_WORDS = {"pnl": "PnL", "llm": "LLM", "avg": "average", "qty": "quantity"}
# sums of the quote currency by the shown heading, with their fewest decimals (``money_column``)
MONEY_DECIMALS = {"value": 2, "notional": 2, "unrealized PnL": 2, "realized PnL": 2,
                  "net PnL": 2, "gross PnL": 2, "fees": 2, "fee": 4}
# formats of the other figures by the shown heading, on every page
FORMATS: dict[str, Any] = {
    "LLM cost (USD)": st.column_config.NumberColumn(format="%.4f"),
    "latency (ms)": st.column_config.NumberColumn(format="%.0f"),
    "took (s)": st.column_config.NumberColumn(format="%.1f"),
    "return (%)": st.column_config.NumberColumn(format="%.2f"),
}


def heading(name: object) -> str:
    """A column's name in words: ``unrealized_pnl`` → ``unrealized PnL``."""
    text = str(name)
    if text in HEADINGS:
        return HEADINGS[text]
    unit = ""
    for pattern, shown in _UNITS:
        if pattern.search(text):
            text, unit = pattern.sub("", text), shown
            break
    return " ".join(_WORDS.get(word, word) for word in text.split("_")) + unit


def money_column(values: pd.Series, label: str | None = None, least: int = 2) -> Any:
    """The format of a column of sums: ``least`` decimals, or as many as keep its largest
    figure's four significant digits when that is below one (``figure``'s rule): a 1 BTC
    account's fees and PnL are thousandths, which two decimals draw as 0.00."""
    return st.column_config.NumberColumn(label, format=f"%.{decimals_for(values, least)}f")


def table(frame: pd.DataFrame, column_config: dict[str, Any] | None = None,
          **options: Any) -> Any:
    """``st.dataframe`` of ``frame`` with worded headers; ``column_config`` is keyed by the
    frame's own column names, as the caller knows them."""
    shown = frame.rename(columns=heading)
    config = {name: FORMATS[name] for name in shown.columns if name in FORMATS}
    config.update({name: money_column(shown[name], least=least)
                   for name, least in MONEY_DECIMALS.items() if name in shown.columns})
    config.update({heading(name): value for name, value in (column_config or {}).items()})
    return st.dataframe(shown, hide_index=True, column_config=config, **options)
