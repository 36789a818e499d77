"""Performance of a bot or a replay run over a span: what ``python -m bot report`` prints
and the console's Performance page shows, from one function so the two cannot disagree."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from bot.model.performance import Performance, performance
from bot.model.round_trips import RoundTrip
from db.models import Session
from db.performance_rollups import (
    rolled_prefix,
    span_equity,
    span_llm_cost,
    span_trips,
)
from db.round_trips import round_trip_rows, round_trips
from db.scorecard import span_scorecard
from db.sessions import in_order


class UnknownScope(LookupError):
    """A bot or replay run the database has no session of."""


def scope_sessions(db: OrmSession, *, bot: str | None = None, run: str | None = None
                   ) -> list[int]:
    """The sessions of a bot (its live days) or of a replay run, oldest first."""
    kind, name = ("replay", run) if run is not None else ("live", bot or "default")
    ids = list(db.scalars(select(Session.id).where(Session.kind == kind,
                                                   Session.run_name == name)
                          .order_by(Session.date, Session.id)))
    if not ids:
        known = sorted(db.scalars(select(Session.run_name).where(Session.kind == kind)
                                  .distinct()))
        what = "replay run" if kind == "replay" else "bot"
        raise UnknownScope(f"no {what} named {name!r} in this database"
                           + (f" (known: {', '.join(known)})" if known else ""))
    return ids


def span_performance(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                     end: datetime | None = None) -> tuple[Performance, list[RoundTrip]]:
    """The span's performance and the round trips still open at its end that opened
    before it, composed from the closed sessions' rollups and the rest's rows
    (``db.performance_rollups``)."""
    ordered = in_order(db, ids)
    rolled = rolled_prefix(db, ordered)
    tallies, still_open = span_trips(db, ordered, rolled, start, end)
    result = performance(span_equity(db, ordered, rolled, start, end), tallies,
                         span_llm_cost(db, ordered, rolled, start, end), start, end)
    return result, still_open


def report(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
           end: datetime | None = None) -> dict:
    """One JSON-ready object: ``metrics``, ``round_trips``, ``by_symbol``, ``by_month`` and
    the decisions' ``scorecard``."""
    result, _ = span_performance(db, ids, start, end)
    return {"metrics": result.metrics,
            "round_trips": round_trip_rows(round_trips(db, ids, start, end)),
            "scorecard": span_scorecard(db, ids, start, end).as_dict(),
            "by_symbol": _records(result.by_symbol), "by_month": _records(
                result.returns["month"].assign(
                    period=result.returns["month"]["period"].dt.strftime("%Y-%m")))}


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, NaN as None (JSON has no NaN)."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


