"""orders by plan: a plan's exits are found by its id

Revision ID: 0017_orders_plan_index
Revises: 0016_decision_scores
Create Date: 2026-12-07 05:30:00

A plan's exit fills and every closing plan look up the sells sent for it
(``db.orders.exits_of_plan``). With no index on ``orders.plan_id`` that read every order
the database holds, so a year of a replay's orders made each of those steps slower.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_orders_plan_index"
down_revision: str | Sequence[str] | None = "0016_decision_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_plan_id", "orders", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_plan_id", table_name="orders")
