"""Whether a run's results may be contaminated by its model's training
(``bot.model.training_cutoffs``), from what the run recorded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.orm import Session as OrmSession

from bot.model.training_cutoffs import contamination_warning
from db.queries_replays import run_settings
from db.sessions import run_dates


def run_contamination(db: OrmSession, ids: Sequence[int]) -> str | None:
    """In words, when the run's days fall before its model's training cutoff (or the cutoff
    is unknown), from the settings it recorded: its provider, model and any
    ``LLM_TRAINING_CUTOFF``. None for the rules engine, days after the cutoff, or a run that
    recorded no settings."""
    record, days = run_settings(db, ids), run_dates(db, ids)
    if record is None or days is None:
        return None
    override = record.get("llm_training_cutoff")
    return contamination_warning(str(record.get("llm_provider") or "rules"),
                                 str(record.get("llm_model") or ""), days[0], days[1],
                                 date.fromisoformat(override) if override else None)
