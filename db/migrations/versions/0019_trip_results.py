"""trip results: each closed session's closed round trips summed per opening decision

Revision ID: 0019_trip_results
Revises: 0018_fill_totals
Create Date: 2026-12-07 07:00:00

The scorecard's realized PnL folded every fill of the run into round trips at each look, to
find the trips each decision opened: on a year of history, most of its time. A closed
session's fills no longer change, so ``trip_results`` keeps, per session and decision, the
net PnL of the trips the session closed that the decision opened, with the decision's time
(``db.trip_results``); a span's realized PnL sums its decisions' rows and folds only the
open day's fills, on from the trips the last rollup left open. The results of the rollups
written before are written at the end of the upgrade to the newest schema (``db.backfill``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_trip_results"
down_revision: str | Sequence[str] | None = "0018_fill_totals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trip_results",
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("open_trace_id", sa.Integer(), sa.ForeignKey("llm_traces.id"),
                  primary_key=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("net", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trip_results")
