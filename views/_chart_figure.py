"""The Chart page's plotly figure: candles, volume, overlays, plan levels and fills.

Plan levels are drawn as one trace per level kind (entry, stop, target) with gaps between
plans, not one trace per plan, so hundreds of plans stay a handful of traces. Hover text
that came from the bot or an LLM is HTML-escaped: plotly renders a subset of HTML in hovers.
Plan and fill points carry the id of the decision trace that caused them as the last item
of their ``customdata``, so a click on one can open that decision (``clicked_trace``).
Drawn as coarser bars (a wide range), the overlays are named for the bars they are computed
over, and each fill marker sums a bar's fills of one side, opening its last fill's decision.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bot.model.averages import EMA_FAST_SPAN, EMA_SLOW_SPAN
from bot.model.figures import decimals_for, figure
from views._indicators import bollinger, ema

UP, DOWN = "#26a69a", "#ef5350"
LEVELS = {  # column → (label, colour, dash)
    "entry": ("Plan entry", "#42a5f5", "solid"),
    "stop": ("Plan stop", "#ef5350", "dot"),
    "target": ("Plan target", "#66bb6a", "dash"),
}
EMA_COLOURS = {EMA_FAST_SPAN: "#ffb74d", EMA_SLOW_SPAN: "#ba68c8", 200: "#90a4ae"}
PLAN_MARKER_SIZE, FILL_MARKER_SIZE = 5, 12
LABEL_ROOM = 0.15  # share of the view past the newest candle, kept for the plans' labels
FOCUS_CANDLES = 60  # the fewest candles the view opens on


def _safe(text: object, limit: int = 160) -> str:
    value = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    value = value if len(value) <= limit else value[: limit - 1] + "…"
    return html.escape(value)


def _trace_id(value: object) -> int | None:
    """A trace id cell: a number, or None, NaN or NA where the point has no decision."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not pd.isna(value):
        return int(value)
    return None


def clicked_trace(event: object) -> int | None:
    """The decision trace behind the first clicked plan or fill point, if any.

    Candles and indicator lines carry no trace id, and a unified-hover click selects a point
    of every trace at that time, so the points are searched for the first one that has one.
    """
    selection = (event.get("selection") if isinstance(event, Mapping)
                 else getattr(event, "selection", None)) or {}
    for point in selection.get("points", []):
        custom = point.get("customdata")
        if isinstance(custom, list) and custom and isinstance(custom[-1], int | float):
            return int(custom[-1])
    return None


def build_figure(
    candles: pd.DataFrame,
    display_start: datetime,
    *,
    plans: pd.DataFrame | None = None,
    fills: pd.DataFrame | None = None,
    ema_spans: Sequence[int] = (),
    bollinger_bands: bool = False,
    title: str = "",
    revision: str = "",
    focus: bool = False,
    bar: str | None = None,
) -> go.Figure:
    """``candles`` may start before ``display_start`` (indicator warm-up); that part is cut.

    The view opens with room right of the newest candle for the open plans' labels and, with
    ``focus``, on the open plans (the rest stays a pan or a zoom-out away). With ``bar``, the
    candles are bars of that length and ``fills`` are summed per bar and side
    (``db.chart_bars.bar_fills``).
    """
    of_bars = f" of {bar} bars" if bar else ""
    close = candles["close"]
    price = f",.{decimals_for(candles['high'])}f"  # ETH/BTC near 0.1 needs four decimals
    shown = candles["timestamp"] >= display_start
    view = candles[shown]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22],
                        vertical_spacing=0.02)
    fig.add_trace(
        go.Candlestick(
            x=view["timestamp"], open=view["open"], high=view["high"], low=view["low"],
            close=view["close"], name="Price", increasing_line_color=UP,
            decreasing_line_color=DOWN, increasing_fillcolor=UP, decreasing_fillcolor=DOWN,
            line_width=1, whiskerwidth=0.3,
        ),
        row=1, col=1,
    )
    if bollinger_bands:
        _add_bollinger(fig, candles["timestamp"][shown], bollinger(close)[shown], of_bars)
    for span in ema_spans:
        fig.add_trace(
            go.Scatter(x=view["timestamp"], y=ema(close, span)[shown], name=f"EMA {span}{of_bars}",
                       mode="lines", line={"width": 1.4, "color": EMA_COLOURS.get(span)},
                       hovertemplate=f"EMA {span}: %{{y:{price}}}<extra></extra>"),
            row=1, col=1,
        )
    if plans is not None and not plans.empty:
        for column, (label, colour, dash) in LEVELS.items():
            fig.add_trace(_plan_trace(plans, column, label, colour, dash, price), row=1, col=1)
        _label_open_plans(fig, plans)
    if fills is not None and not fills.empty:
        for action, symbol, colour in (("BUY", "triangle-up", UP), ("SELL", "triangle-down", DOWN)):
            side = fills[fills["action"] == action]
            if not side.empty:
                trace = (_fill_trace(side, action, symbol, colour, price) if bar is None
                         else _bar_fill_trace(side, action, symbol, colour, bar, price))
                fig.add_trace(trace, row=1, col=1)
    # rising candles 1, falling 0 on a two-colour scale: a list of colour names would be
    # checked name by name (a third of a second for 5,000 candles)
    rising = (view["close"] >= view["open"]).astype(int).to_numpy()
    fig.add_trace(
        go.Bar(x=view["timestamp"], y=view["volume"], name="Volume",
               marker={"color": rising, "colorscale": [[0, DOWN], [1, UP]], "cmin": 0,
                       "cmax": 1},
               marker_line_width=0, opacity=0.6, showlegend=False,
               hovertemplate="Volume: %{y:,.4f}<extra></extra>"),
        row=2, col=1,
    )
    _style(fig, title, revision, price)
    left, right = _view(view, plans, focus)
    fig.update_xaxes(range=[left, right])
    fig.update_yaxes(range=_price_range(view, plans, left), row=1, col=1)
    return fig


def _open_rows(plans: pd.DataFrame | None) -> pd.DataFrame:
    if plans is None or plans.empty:
        return pd.DataFrame(columns=["start", "end", *LEVELS])
    return plans[plans["plan_status"] != "closed"]


def _view(view: pd.DataFrame, plans: pd.DataFrame | None, focus: bool):
    """The x range the chart opens on: the window, or from a while before the open plans
    began (at least ``FOCUS_CANDLES``), then ``LABEL_ROOM`` of it empty past the newest
    candle, where the labels sit clear of candles and fills."""
    times = view["timestamp"]
    first, newest = times.iloc[0], times.iloc[-1]
    left = first
    since = _open_rows(plans)["start"]
    if focus and len(since) and len(times) > FOCUS_CANDLES:
        began = _utc(since.min())
        left = max(first, min(began - (newest - began) * 0.6, times.iloc[-FOCUS_CANDLES]))
    return left, newest + (newest - left) * LABEL_ROOM / (1 - LABEL_ROOM)


def _price_range(view: pd.DataFrame, plans: pd.DataFrame | None, left) -> list[float]:
    """The prices of the candles in view and of the open plans' levels, with a margin."""
    shown = view[view["timestamp"] >= left]
    levels = _open_rows(plans)[list(LEVELS)].to_numpy(dtype=float).ravel()
    low = min([float(shown["low"].min()), *levels])  # no open plan: the candles alone
    high = max([float(shown["high"].max()), *levels])
    margin = (high - low) * 0.04 or abs(high) * 0.01
    return [low - margin, high + margin]


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def _add_bollinger(fig: go.Figure, x: pd.Series, bands: pd.DataFrame, of_bars: str) -> None:
    line = {"width": 1, "color": "rgba(144,202,249,0.7)"}
    fig.add_trace(go.Scatter(x=x, y=bands["upper"], name=f"Bollinger (20, 2){of_bars}",
                             mode="lines",
                             line=line, legendgroup="bb", hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=bands["lower"], name="BB lower", mode="lines", line=line,
                             fill="tonexty", fillcolor="rgba(144,202,249,0.08)",
                             legendgroup="bb", showlegend=False, hoverinfo="skip"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=bands["mid"], name="BB mid", mode="lines",
                             line={"width": 1, "color": "rgba(144,202,249,0.5)", "dash": "dot"},
                             legendgroup="bb", showlegend=False, hoverinfo="skip"),
                  row=1, col=1)


def _plan_trace(plans: pd.DataFrame, column: str, label: str, colour: str, dash: str,
                price: str):
    """Each version is a flat segment; consecutive versions join as a step, plans are gapped."""
    xs: list = []
    ys: list = []
    custom: list = []
    for _, plan in plans.groupby("plan_id", sort=False):
        for row in plan.sort_values("version").itertuples():
            info = [row.plan_id, row.version, row.side, _safe(row.change, 80), row.size,
                    _trace_id(row.trace_id)]
            xs += [row.start, row.end]
            ys += [getattr(row, column), getattr(row, column)]
            custom += [info, info]
        xs.append(None)
        ys.append(None)
        custom.append([None] * 6)
    return go.Scatter(  # small markers at each version's ends: a line alone is not clickable
        x=xs, y=ys, customdata=custom, name=label, mode="lines+markers", connectgaps=False,
        line={"color": colour, "width": 1.6, "dash": dash, "shape": "hv"},
        marker={"size": PLAN_MARKER_SIZE, "color": colour},
        hovertemplate=(
            f"{label}: %{{y:{price}}}<br>plan #%{{customdata[0]}} v%{{customdata[1]}} "
            "%{customdata[2]} size %{customdata[4]}<br>%{customdata[3]}"
            "<br><i>click: open its decision</i><extra></extra>"
        ),
    )


def _label_open_plans(fig: go.Figure, plans: pd.DataFrame) -> None:
    """Name the live levels at their right end: what the bot will act on next."""
    current = plans[plans["plan_status"] != "closed"].sort_values("version").groupby("plan_id")
    for plan_id, rows in current:
        last = rows.iloc[-1]
        for column, short in (("entry", "entry"), ("stop", "SL"), ("target", "TP")):
            fig.add_annotation(  # past the newest candle: nothing else is drawn there
                x=last["end"], y=last[column], xanchor="left", yanchor="middle", xshift=4,
                text=f"#{plan_id} {short} {figure(last[column])}", showarrow=False,
                font={"size": 11, "color": LEVELS[column][1]}, row=1, col=1,
            )


def _fill_trace(side: pd.DataFrame, action: str, symbol: str, colour: str,
                price: str) -> go.Scatter:
    custom = list(zip(side["quantity"], side["fee"], side["reason"].map(_safe),
                      side["realized_pnl"], side["trace_id"].map(_trace_id), strict=True))
    return _fill_markers(
        side, f"{action} fill", symbol, colour, custom,
        f"<b>{action}</b> %{{customdata[0]:.6g}} @ %{{y:{price}}}<br>fee "
        f"%{{customdata[1]:{_sums(side['fee'], 4)}}} · PnL "
        f"%{{customdata[3]:{_sums(side['realized_pnl'])}}}<br>%{{customdata[2]}}"
        "<br><i>click: open its decision</i><extra></extra>",
    )


def _bar_fill_trace(side: pd.DataFrame, action: str, symbol: str, colour: str,
                    bar: str, price: str) -> go.Scatter:
    """One marker per bar: at the fills' average price, summing them in its hover."""
    # one array, not a list of rows: plotly checks a list item by item (a year has ~700)
    custom = np.column_stack([side["fills"], side["quantity"], side["fee"],
                              side["realized_pnl"], side["trace_id"]]).astype(object)
    custom[pd.isna(custom[:, 4]), 4] = None
    return _fill_markers(
        side, f"{action} fills per {bar} bar", symbol, colour, custom,
        f"<b>{action}</b> fills in the {bar} bar from %{{x}}: %{{customdata[0]:,}}"
        f"<br>size %{{customdata[1]:.6~g}} at %{{y:{price}}} on average"
        f"<br>fees %{{customdata[2]:{_sums(side['fee'], 4)}}} · PnL "
        f"%{{customdata[3]:{_sums(side['realized_pnl'])}}}"
        "<br><i>click: open the decision of its last fill</i><extra></extra>",
    )


def _sums(values: pd.Series, least: int = 2) -> str:
    """The d3 format of a hover's fees or PnL: a 1 BTC account's are thousandths."""
    return f",.{decimals_for(values, least)}f"


def _fill_markers(side: pd.DataFrame, name: str, symbol: str, colour: str,
                  custom: Sequence[tuple[object, ...]] | np.ndarray, hovertemplate: str) -> go.Scatter:
    """Fill markers at their price, their decision's trace id last in ``custom``."""
    return go.Scatter(
        x=side["timestamp"], y=side["price"], name=name, mode="markers", customdata=custom,
        marker={"symbol": symbol, "size": FILL_MARKER_SIZE, "color": colour,
                "line": {"width": 1, "color": "#ffffff"}},
        hovertemplate=hovertemplate,
    )


def _style(fig: go.Figure, title: str, revision: str, price: str) -> None:
    fig.update_layout(
        title={"text": _safe(title, 200), "x": 0.01, "font": {"size": 15}},
        height=720,
        margin={"l": 10, "r": 10, "t": 44, "b": 10},
        hovermode="closest",  # with "x unified", plotly selects no point on a click
        legend={"orientation": "h", "yanchor": "top", "y": -0.04, "xanchor": "left", "x": 0,
                "font": {"size": 12}},
        uirevision=revision,  # keeps zoom across auto-refreshes of the same chart
        xaxis_rangeslider_visible=False,
        bargap=0.1,
    )
    fig.update_yaxes(title_text="Price", row=1, col=1, tickformat=price, side="right")
    fig.update_yaxes(title_text="Volume", row=2, col=1, side="right", showgrid=False)
