"""trace answers: every answer an LLM gave for one decision, each with its errors

Revision ID: 0004_trace_answers
Revises: 0003_market_feed
Create Date: 2026-12-06 21:00:00

An answer that does not parse is asked again; ``raw_response`` holds the answer the
decision was taken from, and ``answers`` every answer in order with the errors it had, so
the one asked again stays on the trace. Rows written before keep NULL (one answer, in
``raw_response``).

The column is nullable and has no default, so SQLite adds it in place (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_trace_answers"
down_revision: str | Sequence[str] | None = "0003_market_feed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("answers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.drop_column("answers")
