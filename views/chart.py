"""Chart: candles with volume, EMA/Bollinger, plan levels over their lifetime, and fills.

Pickers sit outside the auto-refreshing fragment so a refresh keeps the operator's choices;
the figure's ``uirevision`` keeps their zoom. Only the chosen window is queried. A click on
a fill or a plan line opens the decision that caused it. A date range holding more candles
than the chart draws one by one is drawn whole as coarser bars (``db.chart_bars``), its
fills summed per bar and only the plans open at its end drawn; the page says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import plotly.graph_objects as go
import streamlit as st

from bot.model.averages import EMA_FAST_SPAN, EMA_SLOW_SPAN
from bot.model.timeframes import timeframe_delta
from db.chart_bars import (
    BAR_CAP,
    bar_candles,
    bar_fills,
    holds_more_than,
    plans_closed_within,
    wide_bar,
)
from db.queries_chart import candle_span, candles, chart_choices, fills, plan_steps
from views._chart_figure import build_figure, clicked_trace
from views._common import (
    market,
    mode_label,
    read_db,
    rerun_when,
    session_feed,
    session_or_stop,
)

WARMUP = 200  # enough candles before the window for EMA 200 / Bollinger 20 to settle
LATEST_CHOICES = (100, 250, 500, 1000, 2000, 5000)
CHART_KEY, CLICKED_KEY = "price_chart", "_chart_clicked_trace"

st.header("Chart")
info = session_or_stop()
with read_db() as db:
    choices = chart_choices(db, info.run_session_ids)
if not choices:
    st.info("No candles stored for this run yet.")
    rerun_when(lambda db: bool(chart_choices(db, info.run_session_ids)))
    st.stop()

pick_symbol, pick_tf, pick_window = st.columns([2, 1, 3])
symbol = pick_symbol.selectbox("Symbol", list(choices), key="chart_symbol")
timeframe = pick_tf.selectbox("Timeframe", choices[symbol], key="chart_tf")
window_mode = pick_window.radio(
    "Window", ["Latest candles", "Date range"], horizontal=True, key="chart_window"
)
start: datetime | None = None
end: datetime | None = None
first_candle: datetime | None = None
last_candle: datetime | None = None
limit = 500
if window_mode == "Latest candles":
    limit = st.select_slider("Candles", LATEST_CHOICES, value=500, key="chart_limit")
else:
    with read_db() as db:
        first_candle, last_candle = candle_span(db, info.run_session_ids, symbol, timeframe)
    last_day = (last_candle or datetime.now(UTC)).date()
    first_day = (first_candle or datetime.now(UTC)).date()
    picked = st.date_input(
        "Dates (UTC)", value=(max(first_day, last_day - timedelta(days=2)), last_day),
        min_value=first_day, max_value=last_day, key="chart_dates",
    )
    if isinstance(picked, tuple) and len(picked) == 2:
        start = datetime.combine(picked[0], time.min, UTC)
        end = datetime.combine(picked[1] + timedelta(days=1), time.min, UTC)
    limit = LATEST_CHOICES[-1]

toggles = st.columns(5)
show_ema = toggles[0].toggle(f"EMA {EMA_FAST_SPAN}/{EMA_SLOW_SPAN} (the engine's)", value=True,
                             key="chart_ema")
show_ema200 = toggles[1].toggle("EMA 200", value=False, key="chart_ema200")
show_bb = toggles[2].toggle("Bollinger", value=True, key="chart_bb")
show_plans = toggles[3].toggle("Plans", value=True, key="chart_plans")
show_fills = toggles[4].toggle("Fills", value=True, key="chart_fills")


def _remember_click() -> None:
    """Read the click in the callback, which sees the figure that was clicked: the rerun
    draws a new one whenever a candle moved, and Streamlit keys the chart's state by it."""
    st.session_state[CLICKED_KEY] = clicked_trace(st.session_state.get(CHART_KEY))


def _wide() -> tuple[str, str] | None:
    """The bar and the stored timeframe a picked range is drawn at, when it holds more
    candles than the chart draws one by one (asked at each refresh: a range grows)."""
    if start is None or end is None or first_candle is None or last_candle is None:
        return None
    with read_db() as db:
        if not holds_more_than(db, info.run_session_ids, symbol, timeframe, start, end,
                               BAR_CAP):
            return None
    span = min(end, last_candle + timeframe_delta(timeframe)) - max(start, first_candle)
    return wide_bar(timeframe, choices[symbol], span)


def _show(fig: go.Figure) -> None:
    st.plotly_chart(fig, key=CHART_KEY, config={"displaylogo": False},
                    on_select=_remember_click, selection_mode="points")


@st.fragment(run_every=15)
def _chart() -> None:
    clicked = st.session_state.pop(CLICKED_KEY, None)
    if clicked is not None:
        st.switch_page("views/decisions.py", query_params={"trace": str(clicked)})
    wide = _wide()
    if wide is not None:
        _bars(*wide)
        return
    with read_db() as db:
        frame, first_shown = candles(
            db, info.run_session_ids, symbol, timeframe, start=start, end=end, limit=limit,
            warmup=WARMUP,
        )
        if frame.empty or first_shown is None:
            st.info("No candles in this window.")
            return
        last_shown = frame["timestamp"].iloc[-1].to_pydatetime()
        # the newest candle's close, not the wall clock: a figure that changes at every
        # refresh is a new chart to Streamlit (a click then is lost, the zoom reset)
        newest = last_shown + timeframe_delta(timeframe)
        window_end = max(newest, datetime.now(UTC)) if end is None else end
        plans = (plan_steps(db, info.run_session_ids, symbol, first_shown, window_end, newest)
                 if show_plans else None)
        trades = (fills(db, info.run_session_ids, symbol, first_shown, window_end)
                  if show_fills else None)
    spans = ([EMA_FAST_SPAN, EMA_SLOW_SPAN] if show_ema else []) + ([200] if show_ema200 else [])
    title = f"{symbol} · {timeframe} · {mode_label(info)} · {market(session_feed(info)).label}"
    fig = build_figure(
        frame, first_shown, plans=plans, fills=trades, ema_spans=spans, bollinger_bands=show_bb,
        title=title, revision=f"{symbol}|{timeframe}|{window_mode}",
        focus=window_mode == "Latest candles",  # a picked date range is shown whole
    )
    _show(fig)
    shown = int((frame["timestamp"] >= first_shown).sum())
    before = frame.loc[frame["timestamp"] < first_shown, "timestamp"]
    if start is not None and not before.empty and before.max() >= start:
        st.info(f"This range holds more than {limit:,} {timeframe} candles: the chart draws "
                f"the newest {limit:,}, from {first_shown:%Y-%m-%d %H:%M} UTC. A longer "
                "timeframe or a shorter range shows it whole.")
    st.caption(
        f"{shown} candles from {first_shown:%Y-%m-%d %H:%M} to {last_shown:%Y-%m-%d %H:%M} UTC"
        f" · {0 if plans is None else plans['plan_id'].nunique()} plans"
        f" · {0 if trades is None else len(trades)} fills · {mode_label(info)} values"
    )


def _bars(bar: str, source: str) -> None:
    """The picked range whole, as ``bar`` bars rolled up from the stored ``source`` candles."""
    assert start is not None and end is not None
    with read_db() as db:
        frame, first_shown = bar_candles(db, info.run_session_ids, symbol, timeframe, bar,
                                         source, start=start, end=end, warmup=WARMUP)
        if frame.empty or first_shown is None:
            st.info("No candles in this window.")
            return
        last_shown = frame["timestamp"].iloc[-1].to_pydatetime()
        newest = min(last_shown + timeframe_delta(bar), end)
        plans = (plan_steps(db, info.run_session_ids, symbol, first_shown, end, newest,
                            open_at_end=True) if show_plans else None)
        hidden = (plans_closed_within(db, info.run_session_ids, symbol, first_shown, end)
                  if show_plans else 0)
        trades = (bar_fills(db, info.run_session_ids, symbol, bar, first_shown, end)
                  if show_fills else None)
    spans = ([EMA_FAST_SPAN, EMA_SLOW_SPAN] if show_ema else []) + ([200] if show_ema200 else [])
    title = (f"{symbol} · {timeframe} as {bar} bars · {mode_label(info)} · "
             f"{market(session_feed(info)).label}")
    _show(build_figure(
        frame, first_shown, plans=plans, fills=trades, ema_spans=spans, bollinger_bands=show_bb,
        title=title, revision=f"{symbol}|{timeframe}|{window_mode}|{bar}", bar=bar,
    ))
    days = f"{(end - start).days:,} day" + ("s" if (end - start).days > 1 else "")
    whole_days = int(BAR_CAP * timeframe_delta(timeframe) / timedelta(days=1))
    shorter = (f"A range of at most {whole_days} days, or “Latest candles”, draws them"
               if whole_days else "“Latest candles” draws them")
    st.info(f"Drawn as {bar} bars: the {days} picked hold more {timeframe} candles "
            f"than the {BAR_CAP:,} the chart draws one by one. {shorter} one by one.")
    past = (f" (and the {timeframe} ones where no {source} one is stored)"
            if source != timeframe else "")
    shown = int((frame["timestamp"] >= first_shown).sum())
    fill_words = "fills hidden" if trades is None else (
        f"fills: {int(trades['fills'].sum()):,} as {len(trades):,} markers, one per bar and "
        "side (its hover sums them, a click opens the decision of its last fill)")
    plan_words = "plans hidden" if plans is None else (
        f"plans: {plans['plan_id'].nunique()} open at the range's end drawn, {hidden:,} "
        "closed within it not drawn")
    st.caption(
        f"{shown} {bar} bars from {first_shown:%Y-%m-%d %H:%M} to "
        f"{last_shown:%Y-%m-%d %H:%M} UTC, rolled up from the stored {source} candles{past}"
        f" · EMA and Bollinger over the {bar} bars · {fill_words} · {plan_words}"
        f" · {mode_label(info)} values"
    )


_chart()
