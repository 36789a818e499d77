"""trace cache tokens: the prompt cache's writes and reads a trace's cost was priced from

Revision ID: 0021_trace_cache_tokens
Revises: 0020_bot_kind
Create Date: 2026-12-07 19:30:00

A call's cache writes and reads are priced at their own rates; the trace kept only its input
and output counts, so its cost could not be explained from them. Older traces read 0.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_trace_cache_tokens"
down_revision: str | Sequence[str] | None = "0020_bot_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on SQLite too: a batch copy of ``llm_traces`` would rewrite a year of
# traces for two counters.
def upgrade() -> None:
    for name in ("cache_write_tokens", "cache_read_tokens"):
        op.add_column("llm_traces", sa.Column(name, sa.Integer(), nullable=False,
                                              server_default="0"))


def downgrade() -> None:
    for name in ("cache_read_tokens", "cache_write_tokens"):
        op.drop_column("llm_traces", name)
