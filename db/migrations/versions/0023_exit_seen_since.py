"""exit seen since: the span a paper stop exit is judged over, kept for its resend

Revision ID: 0023_exit_seen_since
Revises: 0022_plan_version_trace
Create Date: 2026-12-07 23:00:00

A stop exit on the paper venue is judged over the candles since the bot saw the hit. That
span was sent with the order and stored nowhere, so an exit a crash left unsent was resent
judged over nothing: it rested above a market that had passed the stop. The journal row now
keeps where the span begins; older rows keep none (sent, or resent as before).

Plan versions are looked up by the decision that wrote them (retention keeps a trace a
version names): ``trade_plan_versions.trace_id`` gets its index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_exit_seen_since"
down_revision: str | Sequence[str] | None = "0022_plan_version_trace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a nullable column without a key: added in place on SQLite too, no table copy
    op.add_column("orders", sa.Column("seen_since_ms", sa.BigInteger(), nullable=True))
    op.create_index("ix_trade_plan_versions_trace_id", "trade_plan_versions", ["trace_id"])


def downgrade() -> None:
    op.drop_index("ix_trade_plan_versions_trace_id", table_name="trade_plan_versions")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("seen_since_ms")
