"""notify failures: the heartbeat counts the notifications its bot could not deliver

Revision ID: 0007_notify_failures
Revises: 0006_run_settings
Create Date: 2026-12-06 23:30:00

A notification that fails (``NOTIFY_URLS``) is never raised into the loop; the count on the
heartbeat is how the operator learns of it. Nullable with no default: SQLite adds it in
place, and rows written before say nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_notify_failures"
down_revision: str | Sequence[str] | None = "0006_run_settings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bot_status", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("notify_failures", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bot_status", recreate="never") as batch_op:
        batch_op.drop_column("notify_failures")
