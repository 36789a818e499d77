"""Performance: the picked bot's or run's figures over a chosen span of days.

A page of its own, not a tab of Overview or Replays: its span is days to months across the
whole run (Overview is one session's day), it serves live bots and replays alike, and its
date range governs every chart and figure on it. The figures come from
``db.performance.span_performance``, the function ``python -m bot report`` prints.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from bot.model.figures import percent
from bot.model.performance import ANNUALIZATION_DAYS, METRIC_LABELS, Performance, shown
from db.performance import span_performance
from views._common import read_db, session_or_stop
from views._span import picked_span
from views._tables import money_column, table
from views._text import literal

GROUPS = {
    "Returns": ["total_return_pct", "buy_and_hold_pct", "sharpe", "sortino",
                "max_drawdown_pct", "max_drawdown_hours", "exposure_time_pct",
                "final_equity"],
    "Round trips": ["round_trips", "win_rate_pct", "profit_factor", "expectancy", "avg_win",
                    "avg_loss", "avg_holding_minutes"],
    "Costs": ["gross_pnl", "fees", "net_pnl", "llm_cost", "fees_share_of_gross_pct",
              "llm_cost_share_of_gross_pct"],
}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

def _equity_and_returns(figures: Performance) -> None:
    """Equity with its underwater drawdown, the monthly heatmap, weekly and daily returns."""
    points = figures.equity
    curve = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                          vertical_spacing=0.04)
    curve.add_scatter(x=points["time"], y=points["equity"], name="Equity",
                      mode="lines", line={"color": "#42a5f5"}, row=1, col=1)
    curve.add_scatter(x=points["time"], y=points["drawdown_pct"], name="Drawdown %",
                      mode="lines", fill="tozeroy", line={"color": "#ef5350"}, row=2, col=1)
    curve.update_yaxes(title_text="Equity", row=1, col=1)
    curve.update_yaxes(title_text="Below peak (%)", row=2, col=1)
    curve.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=False,
                        hovermode="x unified")
    st.plotly_chart(curve, key="performance_equity")

    st.subheader("Returns by month (%)")
    months = figures.returns["month"]
    grid = pd.DataFrame({"year": months["period"].dt.year, "month": months["period"].dt.month,
                         "return": months["return_pct"]}).pivot(index="year", columns="month",
                                                                values="return")
    grid = grid.reindex(columns=range(1, 13))
    heat = go.Figure(go.Heatmap(
        z=grid.to_numpy(), x=MONTHS, y=[str(y) for y in grid.index], colorscale="RdYlGn",
        zmid=0, text=grid.map(lambda v: "" if pd.isna(v) else percent(v, sign=True)).to_numpy(),
        texttemplate="%{text}", hovertemplate="%{y} %{x}: %{text}<extra></extra>"))
    heat.update_layout(height=120 + 40 * len(grid), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                       yaxis={"type": "category"})
    st.plotly_chart(heat, key="performance_months")

    weekly, daily = st.tabs(["By week", "By day"])
    for tab, name, label in ((weekly, "week", "Week ending"), (daily, "day", "Day")):
        returns = figures.returns[name].assign(period=figures.returns[name]["period"].dt.date)
        with tab:
            table(returns, column_config={
                "period": st.column_config.DateColumn(label),
                "equity": money_column(returns["equity"], "Equity at close")})


st.header("Performance")
info = session_or_stop()
first_day, last_day, start, end = picked_span(info, "performance_dates")
with read_db() as db:
    result, open_trips = span_performance(db, info.run_session_ids, start, end)
st.caption(f"{'Replay run' if info.kind == 'replay' else 'Bot'} {literal(info.run_name)}, "
           f"{first_day} to {last_day} (UTC). Returns are daily; Sharpe and Sortino use a "
           f"risk-free rate of 0 and are annualised over {ANNUALIZATION_DAYS} days (crypto "
           "trades every day). Round-trip figures count the trips closed in the span, net of "
           "fees. Money is in the quote currency.")

for group, keys in GROUPS.items():
    st.subheader(group)
    columns = st.columns(4)
    for i, key in enumerate(keys):
        columns[i % 4].metric(METRIC_LABELS[key][0], shown(key, result.metrics.get(key)))

if result.equity.empty:
    st.info("No equity recorded in these days.")
else:
    _equity_and_returns(result)

st.subheader("Per symbol")
table(result.by_symbol, column_config={
    "round_trips": st.column_config.NumberColumn("round trips closed"),
    "win_rate_pct": st.column_config.NumberColumn(format="%.1f"),
    "avg_return_pct": st.column_config.NumberColumn(format="%.3f")})
if open_trips:
    st.caption(f"{len(open_trips)} round trip(s) still open at the end of the span are not "
               "counted in the figures.")
