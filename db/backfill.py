"""What the newest schema keeps of the rows stored before it: the rollups.

A bot writes its rollups as each day closes (``bot.rollups``); a database upgraded from a
schema without them gets them here, once, by the same functions, at the end of the
upgrade. Migrations stay free of the application (their schema is their revision's, the
code's is the newest), and each call writes only what is missing, so a database already at
the head gains nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession

from db.performance_rollups import add_every_result, roll_up_every_run
from db.scorecard import settle_all


def roll_up_stored(db: OrmSession) -> None:
    """Write every run's missing performance rollups, fill totals, trip results and decision
    scores (flushed, uncommitted)."""
    add_every_result(db)
    roll_up_every_run(db)
    settle_all(db)
    db.flush()
