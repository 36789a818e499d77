"""plan version trace: the decision that wrote a plan version

Revision ID: 0022_plan_version_trace
Revises: 0021_trace_cache_tokens
Create Date: 2026-12-07 20:30:00

A decision that moved a plan's stop or target, or closed it, was named by no row, so
retention thinned it as a trace that caused nothing: the plan's history kept the change and
lost its reason. A version now names the trace that decided it; older versions name none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_plan_version_trace"
down_revision: str | Sequence[str] | None = "0021_trace_cache_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# In place on SQLite too (ADD COLUMN ... REFERENCES, as 0002 does): a batch copy of
# ``trade_plan_versions`` would rewrite every version for one nullable column.
def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE trade_plan_versions ADD COLUMN trace_id INTEGER "
                   "REFERENCES llm_traces (id)")
        return
    op.add_column("trade_plan_versions", sa.Column("trace_id", sa.Integer(), nullable=True))
    op.create_foreign_key("fk_trade_plan_versions_trace_id_llm_traces", "trade_plan_versions",
                          "llm_traces", ["trace_id"], ["id"])


def downgrade() -> None:
    # SQLite drops no column a foreign key names: the table is copied without it
    with op.batch_alter_table("trade_plan_versions") as batch_op:
        batch_op.drop_column("trace_id")
