"""The Trades page's Round trips view: a run's fills grouped from flat to flat, filterable,
with totals over the same filter and a CSV export. A picked trip offers the decisions that
opened and closed it, opened in this tab so the viewed database, session and login stay."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from bot.model.performance import trip_figures
from bot.model.round_trips import RoundTrip
from bot.model.vocabulary import ExitReason
from db.queries import SessionInfo
from db.round_trips import filtered_trips, round_trip_frame, round_trips
from views._common import money, read_db
from views._tables import money_column, table

OUTCOMES = {"all": None, "wins": "win", "losses": "loss"}


def render_round_trips(info: SessionInfo) -> None:
    with read_db() as db:
        trips = round_trips(db, info.run_session_ids)
    cols = st.columns([2, 2, 1, 2])
    symbols = cols[0].multiselect("Symbol", sorted({t.symbol for t in trips}), key="trips_symbols")
    reasons = cols[1].multiselect("Exit reason", [str(r) for r in ExitReason], key="trips_reasons")
    outcome = cols[2].selectbox("Result", list(OUTCOMES), key="trips_outcome")
    dates = cols[3].date_input("Closed (UTC)", value=[], key="trips_dates")
    if isinstance(dates, tuple) and len(dates) == 2:
        start = datetime.combine(dates[0], time.min, UTC)
        end = datetime.combine(dates[1] + timedelta(days=1), time.min, UTC)
        trips = [t for t in trips if t.closed_at is not None and start <= t.closed_at < end]
    shown = filtered_trips(trips, symbols, reasons, OUTCOMES[outcome])
    totals = trip_figures(shown)
    metrics = st.columns(6)
    metrics[0].metric("Round trips closed", f"{totals['round_trips']:,}")
    win_rate = totals["win_rate_pct"]
    metrics[1].metric("Win rate", "—" if win_rate is None else f"{win_rate:.1f} %")
    metrics[2].metric("Gross PnL", money(totals["gross_pnl"]))
    metrics[3].metric("Fees", money(totals["fees"]))
    metrics[4].metric("Net PnL", money(totals["net_pnl"]))
    metrics[5].metric("Expectancy per trip", money(totals["expectancy"]))
    if not shown:
        st.info("No round trips match.")
        return
    frame = round_trip_frame(shown)
    config = {  # the headers ``table`` would not word well enough
        "direction": st.column_config.Column("side"),
        "opened_at": st.column_config.Column("opened (UTC)"),
        "closed_at": st.column_config.Column("closed (UTC)"),
        "open_trace_id": st.column_config.NumberColumn("opened by decision", format="#%d"),
        "close_trace_id": st.column_config.NumberColumn("closed by decision", format="#%d"),
        "fees": money_column(frame["fees"], least=4),
        "return_pct": st.column_config.NumberColumn(format="%.3f"),
        "duration_minutes": st.column_config.NumberColumn("held (min)", format="%.0f"),
    }
    st.caption("Select a round trip to open the decisions that opened and closed it.")
    picked = table(frame, column_config=config, key="trips_table", on_select="rerun",
                   selection_mode="single-row")
    rows = picked.selection.rows if picked is not None else []
    if rows and rows[0] < len(shown):  # a pick made before a filter changed may be gone
        _decision_buttons(shown[rows[0]])
    st.download_button("Download round trips CSV", frame.to_csv(index=False).encode(),
                       "round_trips.csv", "text/csv", key="trips_csv")


def _decision_buttons(trip: RoundTrip) -> None:
    cols = st.columns(2)
    for col, what, trace in ((cols[0], "opened", trip.open_trace_id),
                             (cols[1], "closed", trip.close_trace_id)):
        if trace is None:
            col.button(f"No decision {what} it", disabled=True, key=f"trip_{what}")
        elif col.button(f"Open the decision that {what} it (#{trace})", key=f"trip_{what}"):
            st.switch_page("views/decisions.py", query_params={"trace": str(trace)})
