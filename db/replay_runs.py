"""A replay run's end: its paper clock (one row per run, keyed by the run's name) says
when the run reached the end of its candles. A finished run is summarized, never stepped
again; a run without the mark (killed, or stopped by a command) resumes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as OrmSession

from db.models import PaperClock


def run_finished_at(db: OrmSession, run_name: str) -> datetime | None:
    """When the run finished; None while it has not (or has never started)."""
    return db.scalar(select(PaperClock.finished_at).where(PaperClock.account == run_name))


def mark_finished(db: OrmSession, run_name: str, now: datetime) -> None:
    """Record that the run reached its end, committed."""
    db.execute(update(PaperClock).where(PaperClock.account == run_name)
               .values(finished_at=now))
    db.commit()
