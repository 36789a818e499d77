"""Commands: what the console asked the bot to do, and what came of it."""

from __future__ import annotations

import streamlit as st

from db.queries import command_history
from views._common import own_db, scrub
from views._tables import table
from views._text import literal

st.header("Commands")
status = st.selectbox("Status", ["all", "pending", "running", "done", "failed"], key="cmd_status")


@st.fragment(run_every=5)
def _history() -> None:
    with own_db() as db:
        frame = command_history(db, status=None if status == "all" else status)
    if frame.empty:
        st.info("No commands yet.")
        return
    frame["result"] = frame["result"].map(lambda r: scrub(r) if r is not None else None)
    counts = frame["status"].value_counts()
    st.caption(" · ".join(f"{literal(name)}: {count}" for name, count in counts.items()))
    table(frame)


_history()
