"""replay summary: a finished replay run's summary is recorded with its end

Revision ID: 0012_replay_summary
Revises: 0011_shadow_decision
Create Date: 2026-12-07 02:10:00

A finished run never changes, yet its summary (fingerprint of every fill, steps, drawdown)
was computed from its rows at every look: on a year of steps, half a second per page. The
run's clock now keeps the summary as JSON, written in the transaction that marks the run
finished; the Replays page and ``python -m bot replay`` read it. Rows written before keep
NULL, and their summary is computed from the rows as it was.

The column is nullable with no default, so SQLite adds it in place (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_replay_summary"
down_revision: str | Sequence[str] | None = "0011_shadow_decision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("paper_clock", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("summary", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("paper_clock", recreate="never") as batch_op:
        batch_op.drop_column("summary")
