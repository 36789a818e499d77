"""The bot's side of the performance rollups (``db.performance_rollups``): as a session
closes (the day rolls over, or a replay reaches its end), its figures are digested once.

It also catches up on any closed session left without one (a bot stopped before midnight
and started days later), so a run's rollups stay a prefix of its sessions. A failure is an
error of the day, not of the loop: a session without a rollup is read from its rows.
"""

from __future__ import annotations

from bot.runtime import Runtime
from db.performance_rollups import roll_up_closed


def roll_up(rt: Runtime, *, finished: bool = False) -> None:
    """Digest the run's closed sessions: all but the open one, or all once ``finished``."""
    try:
        with rt.db() as db:
            roll_up_closed(db, rt.session_ids(db), None if finished else rt.session_id)
    except Exception as exc:
        rt.note_error("performance rollup", exc)
