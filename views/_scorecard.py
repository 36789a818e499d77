"""The Decisions page's Scorecard section: the run's decisions over a chosen span of days,
scored by what the market did after them (``db.scorecard``, what ``python -m bot report``
prints)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bot.model.figures import figure
from db.contamination import run_contamination
from db.queries import SessionInfo
from db.scorecard import span_scorecard
from views._common import read_db
from views._span import picked_span
from views._tables import table
from views._text import literal


def show_scorecard(info: SessionInfo) -> None:
    _, _, start, end = picked_span(info, "scorecard_dates")
    with read_db() as db:
        card = span_scorecard(db, info.run_session_ids, start, end)
        contamination = run_contamination(db, info.run_session_ids)
    if contamination and info.kind == "replay":
        st.warning(literal(contamination))
    if not card.decisions:
        st.info("No decisions in these days.")
        return
    figures = st.columns(3)
    figures[0].metric("Decisions", f"{card.decisions:,} over {card.days} days")
    figures[1].metric("LLM cost (USD)", f"{card.cost:.4f}")
    figures[2].metric("Tokens per decision", f"{card.tokens_per_decision or 0:,.0f}")
    figures = st.columns(3)
    figures[0].metric("LLM cost per decision (USD)", f"{card.cost_per_decision or 0:.4f}")
    figures[1].metric("LLM cost per day (USD)", f"{card.cost_per_day or 0:.4f}")
    figures[2].metric("Realized PnL of what they opened, net of LLM cost",
                      figure(card.realized_net_of_cost))
    st.caption(
        "Each decision is scored by its call (its first BUY or SELL, else its first action) "
        "on that symbol's return from the decision's time over 1 h, 4 h and 24 h, from the "
        "stored candles. A BUY hits when the return is above 0, a SELL when it is below; a "
        "HOLD has no hit rate. Empty cells: nothing scored yet. Still pending (no candle "
        "reaches the horizon yet): "
        + ", ".join(f"{horizon} {count}" for horizon, count in card.pending.items()) + ".")
    st.subheader("By action and confidence")
    table(pd.DataFrame(card.by_call))
    if card.versus_shadow:
        st.subheader("LLM against the rules engine's shadow")
        st.caption("The rules engine decided on the same context as the LLM, never executed. "
                   "Forward PnL: what each call would have earned over the horizon on the "
                   "size it asked for (quote currency); the LLM's is then net of its cost.")
        table(pd.DataFrame(card.versus_shadow))
    else:
        st.caption("No shadow decisions in these days (the rules engine shadows an LLM only).")
