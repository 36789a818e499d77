"""Trades: every fill, filterable, a page of them at a time, with totals over the whole
filter and a CSV export of all of it; or the run's round trips (``views/_round_trips.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import partial

import streamlit as st

from db.queries_trading import TradeFilter, all_trades, trade_symbols, trade_totals, trades
from views._common import mode_label, money, read_db, session_or_stop
from views._decision_link import decision_ids, open_picked, remember_pick
from views._round_trips import render_round_trips
from views._tables import table

PAGE_ROWS = 500  # a year of a run is 20k fills: the table shows a page, the totals all
TABLE_KEY, PICKED_KEY, PAGE_KEY = "trades_table", "_trades_picked_decision", "trades_page"

st.header("Trades")
info = session_or_stop()
if st.segmented_control("View", ["Fills", "Round trips"], default="Fills",
                        key="trades_view") == "Round trips":
    render_round_trips(info)
    st.stop()

with read_db() as db:
    symbols = trade_symbols(db, info.run_session_ids)
cols = st.columns([2, 1, 2, 2, 1])
picked_symbols = cols[0].multiselect("Symbol", symbols, key="trades_symbols")
side = cols[1].selectbox("Side", ["all", "BUY", "SELL"], key="trades_side")
dates = cols[2].date_input("Dates (UTC)", value=[], key="trades_dates")
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
    """New fills appear by themselves; the filters above keep their values. A picked fill
    opens its decision in this tab, so the viewed database, the session and the login stay."""
    open_picked(PICKED_KEY)
    with read_db() as db:
        totals = trade_totals(db, where)
        pages = max(1, -(-int(totals["count"]) // PAGE_ROWS))
        page = min(int(st.session_state.get(PAGE_KEY, 1)), pages)
        if PAGE_KEY in st.session_state:  # fewer pages than before: the last one is shown
            st.session_state[PAGE_KEY] = page
        frame = trades(db, where, limit=PAGE_ROWS, offset=(page - 1) * PAGE_ROWS)
    metrics = st.columns(5)
    metrics[0].metric("Fills", f"{totals['count']:,}")
    metrics[1].metric(f"Notional ({label})", money(totals["notional"]))
    metrics[2].metric("Fees", money(totals["fees"]))
    metrics[3].metric(f"Realized PnL ({label})", money(totals["realized_pnl"]))
    metrics[4].metric("After fees", money(totals["net_pnl"]))
    if frame.empty:
        st.info("No trades match.")
        return
    if pages > 1:
        st.number_input(f"Page (of {pages:,}, {PAGE_ROWS:,} fills each, newest first)",
                        min_value=1, max_value=pages, key=PAGE_KEY)
        st.caption(f"Fills {(page - 1) * PAGE_ROWS + 1:,}–{(page - 1) * PAGE_ROWS + len(frame):,}"
                   f" of {totals['count']:,}; the totals above cover all of them.")
    st.caption("Select a fill to open the decision that caused it.")
    table(frame, key=TABLE_KEY, selection_mode="single-row",
          on_select=partial(remember_pick, TABLE_KEY, PICKED_KEY, decision_ids(frame["trace_id"]),
                            "This fill has no recorded decision."))
    st.download_button(f"Download CSV (all {totals['count']:,} fills)", partial(_csv, where),
                       "trades.csv", "text/csv", key="trades_csv")


def _csv(where: TradeFilter) -> bytes:
    """Every fill of the filter, read when the download is asked for, not at every render."""
    with read_db() as db:
        return all_trades(db, where).to_csv(index=False).encode()


_table()
