"""Trades: every fill, filterable, with totals over the same filter and a CSV export; or
the run's round trips (``views/_round_trips.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from db.queries_trading import TradeFilter, trade_symbols, trade_totals, trades
from views._common import current_session, mode_label, money, no_session_notice, read_db
from views._round_trips import render_round_trips

LIMIT = 5000

st.header("Trades")
info = current_session()
if info is None:
    no_session_notice()
    st.stop()
if st.segmented_control("View", ["Fills", "Round trips"], default="Fills",
                        key="trades_view") == "Round trips":
    render_round_trips(info)
    st.stop()

with read_db() as db:
    symbols = trade_symbols(db, info.run_session_ids)
cols = st.columns([2, 1, 2, 2, 1])
picked_symbols = cols[0].multiselect("Symbol", symbols, key="trades_symbols")
side = cols[1].selectbox("Side", ["all", "BUY", "SELL"], key="trades_side")
dates = cols[2].date_input("Dates (UTC)", value=(), key="trades_dates")
reason = cols[3].text_input("Reason contains", key="trades_reason")
whole_run = cols[4].toggle("Whole run", value=False, key="trades_run",
                           help="all days of this run, not only the selected session")
start = end = None
if isinstance(dates, tuple) and len(dates) == 2:
    start = datetime.combine(dates[0], time.min, UTC)
    end = datetime.combine(dates[1] + timedelta(days=1), time.min, UTC)
where = TradeFilter(
    session_ids=info.run_session_ids if whole_run else (info.id,),
    symbols=tuple(picked_symbols), side=None if side == "all" else side, start=start, end=end,
    reason_contains=reason.strip() or None,
)
label = mode_label(info)


@st.fragment(run_every=15)
def _table() -> None:
    """New fills appear by themselves; the filters above keep their values."""
    with read_db() as db:
        frame = trades(db, where, limit=LIMIT)
        totals = trade_totals(db, where)
    metrics = st.columns(5)
    metrics[0].metric("Fills", f"{totals['count']:,}")
    metrics[1].metric(f"Notional ({label})", money(totals["notional"]))
    metrics[2].metric("Fees", money(totals["fees"]))
    metrics[3].metric(f"Realized PnL ({label})", money(totals["realized_pnl"]))
    metrics[4].metric("After fees", money(totals["net_pnl"]))
    if totals["count"] > LIMIT:
        st.warning(
            f"Showing the newest {LIMIT:,} of {totals['count']:,} fills; totals cover all."
        )
    if frame.empty:
        st.info("No trades match.")
        return
    frame.insert(1, "decision", frame["trace_id"].map(
        lambda t: f"decisions?trace={int(t)}" if t == t and t is not None else None
    ))
    st.dataframe(frame, hide_index=True, column_config={
        "decision": st.column_config.LinkColumn("decision", display_text=r"trace=(\d+)"),
        "fee": st.column_config.NumberColumn(format="%.4f"),
        "realized_pnl": st.column_config.NumberColumn(format="%.2f"),
    })
    csv = frame.drop(columns="decision").to_csv(index=False).encode()
    st.download_button("Download CSV", csv, "trades.csv", "text/csv", key="trades_csv")


_table()
