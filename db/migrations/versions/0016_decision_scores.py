"""decision scores: the scorecard's rollup, each day's settled decisions summed

Revision ID: 0016_decision_scores
Revises: 0015_performance_rollups
Create Date: 2026-12-07 04:20:00

``decision_score_days`` and ``decision_score_groups`` hold each session's days of decisions
whose horizons are all settled, summed (``db.decision_scores``), and
``decision_score_tips`` how far each run is rolled up; the scorecard of a span is then a
GROUP BY over a few rows a day. Every run already stored is rolled up at the end of the
upgrade to the newest schema (``db.backfill``), by the code the bot rolls up with at each
rollover, so a database of a year of decisions reads flat at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_decision_scores"
down_revision: str | Sequence[str] | None = "0015_performance_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HORIZONS = ("1h", "4h", "24h")


def _key() -> list[sa.Column]:
    return [sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("session_id", sa.Integer(), sa.ForeignKey("sessions.id"), nullable=False),
            sa.Column("day", sa.Date(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "decision_score_days", *_key(),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("shadowed", sa.Integer(), nullable=False),
        sa.Column("shadowed_cost", sa.Float(), nullable=False),
        *(sa.Column(f"pending_{h}", sa.Integer(), nullable=False) for h in HORIZONS),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decision_score_days_session_day", "decision_score_days",
                    ["session_id", "day"])
    op.create_table(
        "decision_score_groups", *_key(),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.String(length=16), nullable=False),
        sa.Column("horizon", sa.String(length=8), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False)
          for name in ("count", "scored", "hits", "directional")),
        sa.Column("forward_sum", sa.Float(), nullable=False),
        sa.Column("forward_pnl", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decision_score_groups_session_day", "decision_score_groups",
                    ["session_id", "day"])
    op.create_table(
        "decision_score_tips",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("run_name", sa.String(length=120), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "run_name"),
    )


def downgrade() -> None:
    op.drop_table("decision_score_tips")
    for table in ("decision_score_groups", "decision_score_days"):
        op.drop_index(f"ix_{table}_session_day", table_name=table)
        op.drop_table(table)
