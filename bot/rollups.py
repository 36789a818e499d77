"""The bot's side of the rollups a day leaves: as a session closes (the day rolls over, or a
replay reaches its end) its performance figures are digested once
(``db.performance_rollups``), and at each rollover the run's decisions whose horizons have
all passed are scored once (``db.decision_scores``, through ``db.scorecard``). Pages then
sum a few rows a day instead of a year of steps, fills and traces; a step stays as cheap as
it was.

The performance rollup also catches up on any closed session left without one (a bot
stopped before midnight and started days later), so a run's rollups stay a prefix of its
sessions. A failure is an error of the day, not of the loop: what is not rolled up is read
from its rows.
"""

from __future__ import annotations

from bot.runtime import Runtime
from db.performance_rollups import roll_up_closed
from db.scorecard import settle_scores


def roll_up(rt: Runtime, *, finished: bool = False) -> None:
    """Digest the run's closed sessions: all but the open one, or all once ``finished``."""
    try:
        with rt.db() as db:
            roll_up_closed(db, rt.session_ids(db), None if finished else rt.session_id)
    except Exception as exc:
        rt.note_error("performance rollup", exc)


def roll_up_scores(rt: Runtime) -> None:
    """Score the run's decisions whose horizons have all passed."""
    try:
        with rt.db() as db:
            settle_scores(db, rt.kind, rt.run_name)
            db.commit()
    except Exception as exc:
        rt.note_error("decision scores", exc)
