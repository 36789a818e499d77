"""The span of days a page's figures cover, picked within the shown run's days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from db.queries import SessionInfo
from db.sessions import run_utc_days
from views._common import read_db


def picked_span(info: SessionInfo, key: str) -> tuple[date, date, datetime, datetime]:
    """The first and last UTC day picked (the run's whole span by default: every step of
    it, whatever its SESSION_TIMEZONE) and the UTC times they bound: [start of the first
    day, end of the last)."""
    with read_db() as db:
        days = run_utc_days(db, info.run_session_ids)
    assert days is not None  # the session picked is one of them
    picked = st.date_input("Dates (UTC)", value=days, min_value=days[0], max_value=days[1],
                           key=key)
    chosen = picked if isinstance(picked, tuple) and picked else (days[0], days[1])
    return (chosen[0], chosen[-1], datetime.combine(chosen[0], time.min, UTC),
            datetime.combine(chosen[-1] + timedelta(days=1), time.min, UTC))
