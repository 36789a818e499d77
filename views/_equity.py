"""Equity against buy-and-hold, drawn the same way on Overview (a live day) and Replays (a
run), so the two can be compared by eye."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def equity_figure(curve: pd.DataFrame, equity_name: str, *, height: int, title: str = ""
                  ) -> go.Figure:
    """``curve`` as ``db.queries_replays.equity_curve`` returns it (time, equity, buy_and_hold)."""
    fig = go.Figure()
    fig.add_scatter(x=curve["time"], y=curve["equity"], name=equity_name, mode="lines",
                    line={"color": "#42a5f5", "width": 2.2})
    fig.add_scatter(x=curve["time"], y=curve["buy_and_hold"], name="buy & hold",
                    mode="lines", line={"color": "#90a4ae", "dash": "dot"})
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30 if title else 10, "b": 10},
                      legend={"orientation": "h", "y": 1.1}, title=title or None,
                      hovermode="x unified")
    return fig
