"""performance rollups: each closed session's step figures and round trips, digested

Revision ID: 0015_performance_rollups
Revises: 0014_compact_storage
Create Date: 2026-12-07 04:40:00

The Performance page folded a run's every equity step and fill at each look: on a year of
history, 11x its time on a day. A closed session's steps and fills no longer change, so
``performance_rollups`` keeps, per session, its steps digested and its closed round trips
tallied per symbol, and its traces' LLM cost (``db.performance_rollups``); the page
composes them with the open day's rows. They are written for every run's closed sessions
(all but its newest, all of a finished replay) at the end of the upgrade to the newest
schema, with the code the bot writes them with (``db.backfill``), so an existing database
reads fast without a rebuild; a session left without one is read from its rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_performance_rollups"
down_revision: str | Sequence[str] | None = "0014_compact_storage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "performance_rollups",
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("steps", sa.Text(), nullable=True),
        sa.Column("trips", sa.Text(), nullable=False),
        sa.Column("llm_cost", sa.Float(), nullable=False),
        sa.Column("llm_first", sa.DateTime(timezone=True), nullable=True),
        sa.Column("llm_last", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("performance_rollups")
