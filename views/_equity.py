"""Equity against buy-and-hold, drawn the same way on Overview (a live day) and Replays (a
run), so the two can be compared by eye."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative


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


def compare_figure(curves: dict[str, pd.DataFrame], *, height: int) -> go.Figure:
    """Several runs' equity, each ``normalised_curve``d, on one chart (1.0 is the start)."""
    fig = go.Figure()
    colors = qualitative.D3  # one distinct colour per run
    for i, (name, curve) in enumerate(curves.items()):
        fig.add_scatter(x=curve["time"], y=curve["equity"], name=name, mode="lines",
                        line={"width": 2, "color": colors[i % len(colors)]})
    fig.add_hline(y=1.0, line={"color": "#90a4ae", "dash": "dot", "width": 1})
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.2, "yanchor": "top"},
                      title="Equity ÷ starting equity", hovermode="x unified")
    return fig
