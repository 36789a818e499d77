"""replay finished: a replay run's paper clock records when its run ended

Revision ID: 0005_replay_finished
Revises: 0004_trace_answers
Create Date: 2026-12-06 21:00:00

Re-running a finished replay redid its last step (and could trade again); a run killed at
any point resumes. The run's clock now says which it is: ``finished_at`` is set once the
run reached the end of its candles (or its ``--end``), and a run that has it is only
summarized again. Rows written before keep NULL: such a run resumes, as it did.

The column is nullable with no default, so SQLite adds it in place (``ALTER TABLE ... ADD
COLUMN``), as 0003 did.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_replay_finished"
down_revision: str | Sequence[str] | None = "0004_trace_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("paper_clock", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("paper_clock", recreate="never") as batch_op:
        batch_op.drop_column("finished_at")
