"""The scorecard's rollup kept as the bot goes: at each rollover, the run's decisions whose
horizons have all passed are scored once into ``decision_scores`` (``db.scorecard``), so
the scorecard of any span sums them rather than parsing a year of traces. Once a day, not
at each step: a step stays as cheap as it was."""

from __future__ import annotations

from bot.runtime import Runtime
from db.scorecard import settle_scores


def roll_up_scores(rt: Runtime) -> None:
    """A failure is an error of the day, not of the loop: the traces not rolled up are
    scored from themselves when read."""
    try:
        with rt.db() as db:
            settle_scores(db, rt.kind, rt.run_name)
            db.commit()
    except Exception as exc:
        rt.note_error("decision scores", exc)
