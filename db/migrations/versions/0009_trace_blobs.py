"""trace blobs: prompts and LLM answers stored once, compressed

Revision ID: 0009_trace_blobs
Revises: 0008_trace_provider
Create Date: 2026-12-06 23:55:00

An LLM's prompt (kilobytes at every decision) and its answers, which repeat, went inline
into every ``llm_traces`` row. They now go to ``trace_blobs``, keyed by the SHA-256 of the
text and zlib-compressed, and the trace names them in ``prompt_hash`` / ``response_hash``.
Rows written before keep their text inline and NULL hashes, and read as they did.

The columns are nullable with no default, so SQLite adds them in place, as 0003 did.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_trace_blobs"
down_revision: str | Sequence[str] | None = "0008_trace_provider"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trace_blobs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("prompt_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("response_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.drop_column("response_hash")
        batch_op.drop_column("prompt_hash")
    op.drop_table("trace_blobs")
