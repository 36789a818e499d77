"""Overview: is the bot up, is it making money after fees and LLM cost, what is it holding."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from db.queries import open_exposure, overview_figures, pnl_vs_cost, recent_decisions
from db.queries_replays import equity_curve
from views._common import (
    command_target,
    mode_label,
    money,
    read_db,
    scrub,
    session_or_stop,
    supervisor,
)
from views._equity import equity_figure
from views._tables import table
from views._text import literal

st.header("Overview")
info = session_or_stop()


@st.fragment(run_every=10)
def _overview() -> None:
    label = mode_label(info)
    with read_db() as db:
        figures = overview_figures(db, info)
        exposure = open_exposure(db, info.id)
        curve = pnl_vs_cost(db, info.id)
        equity = equity_curve(db, [info.id], info.starting_balance)
        decisions = recent_decisions(db, info.id)
    st.caption(f"Session {literal(info.label)} · all values are **{label}**")
    # two rows of four: seven columns cut a five-figure equity at 1400 px
    cols = [*st.columns(4), *st.columns(4)]
    cols[0].metric(f"Equity ({label})", money(figures["equity"]),
                   delta=money(figures["equity"] - info.starting_balance))
    cols[1].metric(f"Net PnL ({label})", money(figures["net_pnl"]),
                   help="realized PnL − fees − LLM cost")
    cols[2].metric("Unrealized", money(figures["unrealized_pnl"]))
    cols[3].metric("Fees", money(figures["fees"]))
    cols[4].metric("LLM cost", money(figures["llm_cost"]))
    cols[5].metric("Trades", f"{figures['trades']:,}")
    win_rate = figures["win_rate"]
    cols[6].metric("Win rate", "—" if win_rate is None else f"{win_rate:.0%}",
                   help=f"{figures['wins']} won / {figures['round_trips']} round trips closed "
                        "in this session, after fees (as Performance)" if win_rate is not None
                   else "no round trip closed in this session yet")
    left, right = st.columns([3, 2])
    with left:
        equity_tab, cost_tab = st.tabs(["Equity vs buy-and-hold", "PnL vs LLM cost"])
        with equity_tab:
            if equity.empty:
                st.info("No equity recorded yet: the bot records it with each decision.")
            else:
                st.plotly_chart(equity_figure(equity, f"equity ({label})", height=340),
                                key="equity_curve")
        with cost_tab:
            if curve.empty:
                st.info("No trades or decisions yet.")
            else:
                st.plotly_chart(_curve_figure(curve, label), key="pnl_curve")
    with right:
        st.subheader("Open exposure")
        if exposure:
            frame = pd.DataFrame(exposure)
            table(frame[["symbol", "quantity", "mark_price", "value", "unrealized_pnl"]])
            st.caption(f"Total {money(frame['value'].sum())} ({label})")
        else:
            st.info("Flat: no open positions.")
    _bot_state()
    st.subheader("Last decisions")
    if decisions.empty:
        st.info("No decisions yet.")
    else:
        decisions["outcome"] = decisions["outcome"].map(scrub)
        table(decisions)


def _bot_state() -> None:
    """The state of the bot that runs the shown session; a replay has none, and the console's
    bot's state under a replay's figures would read as the replay's own."""
    bot = command_target().bot
    if bot is None:
        return
    state = supervisor(bot).state()
    st.subheader("Bot")
    cols = st.columns(4)
    cols[0].metric("State", literal(state.state))
    age = state.heartbeat_age_s
    cols[1].metric("Heartbeat", "—" if age is None else f"{age:.0f}s ago")
    cols[2].metric("Loops", f"{state.loop_count:,}")
    cols[3].metric("Engine", literal(state.engine or "—"))
    if state.last_error:
        st.code(scrub(state.last_error)[-2000:], language=None)


def _curve_figure(curve: pd.DataFrame, label: str) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=curve["time"], y=curve["cum_pnl"], name=f"Trading PnL after fees ({label})",
                    line={"shape": "hv", "color": "#26a69a"})
    fig.add_scatter(x=curve["time"], y=curve["cum_llm_cost"], name="LLM cost",
                    line={"shape": "hv", "color": "#ef5350", "dash": "dot"})
    fig.add_scatter(x=curve["time"], y=curve["net_after_llm"], name="Net after LLM cost",
                    line={"shape": "hv", "color": "#42a5f5", "width": 2.5})
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.1}, hovermode="x unified")
    return fig


_overview()
