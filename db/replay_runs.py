"""A replay run's end: its paper clock (one row per run, keyed by the run's name) says
when the run reached the end of its candles, and keeps its summary as it was then. A
finished run is summarized, never stepped again; a run without the mark (killed, or
stopped by a command) resumes."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as OrmSession

from db.models import PaperClock


def run_finished_at(db: OrmSession, run_name: str) -> datetime | None:
    """When the run finished; None while it has not (or has never started)."""
    return db.scalar(select(PaperClock.finished_at).where(PaperClock.account == run_name))


def mark_finished(db: OrmSession, run_name: str, now: datetime, summary: dict) -> None:
    """Record that the run reached its end, with its summary then (whatever its reader
    wants kept: ``db.queries_replays.finished_record``), committed together."""
    db.execute(update(PaperClock).where(PaperClock.account == run_name)
               .values(finished_at=now, summary=json.dumps(summary)))
    db.commit()


def finished_summary(db: OrmSession, run_name: str) -> dict | None:
    """The summary recorded as the run finished; None while it runs, for a run finished
    before summaries were recorded, or for a record that is not a JSON object."""
    text = db.scalar(select(PaperClock.summary).where(PaperClock.account == run_name,
                                                      PaperClock.finished_at.is_not(None)))
    try:
        summary = json.loads(text) if text else None
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None
