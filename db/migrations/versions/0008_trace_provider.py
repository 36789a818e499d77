"""trace provider: what makes a decision's trace reproducible and comparable

Revision ID: 0008_trace_provider
Revises: 0007_notify_failures
Create Date: 2026-12-06 23:20:00

Each trace records the provider that answered, the model version its response reported,
the temperature sent (NULL where the API takes none), the prompt template version, the hash
of the decision's first request (its key in the answers' recording) and where its price came
from ("local" for a model that costs nothing). Rows written before keep NULL.

The columns are nullable with no default, so SQLite adds them in place (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_trace_provider"
down_revision: str | Sequence[str] | None = "0007_notify_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("provider", sa.String(32)),
    ("model_version", sa.String(128)),
    ("temperature", sa.Float()),
    ("prompt_version", sa.String(32)),
    ("request_hash", sa.String(64)),
    ("price_source", sa.String(64)),
)


def upgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
