"""shadow decision: the rules engine's decision beside an LLM's trace, never executed

Revision ID: 0011_shadow_decision
Revises: 0010_equity_steps
Create Date: 2026-12-07 00:20:00

When an LLM decides, the rules engine decides on the same context too; its decision (the
``Decision`` JSON) is kept on the trace so the scorecard can score both the same way. Rows
written before, and the rules engine's own traces, keep NULL.

The column is nullable with no default, so SQLite adds it in place (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_shadow_decision"
down_revision: str | Sequence[str] | None = "0010_equity_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("shadow_decision", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.drop_column("shadow_decision")
