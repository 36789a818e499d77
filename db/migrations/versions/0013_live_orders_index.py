"""live orders index: the run's live orders are found by their status

Revision ID: 0013_live_orders_index
Revises: 0012_replay_summary
Create Date: 2026-12-07 02:40:00

The loop looks up the run's live orders (new or open) at steps that have any, and a plan's
live stop. By session alone, that read every order the run ever sent: a year of a replay's
orders at each such step, a step slowing as its history grew. Live orders are few, and
(status, session_id) finds them without reading the others.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_live_orders_index"
down_revision: str | Sequence[str] | None = "0012_replay_summary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_status_session", "orders", ["status", "session_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_status_session", table_name="orders")
