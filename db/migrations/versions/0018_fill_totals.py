"""fill totals: each closed session's fills summed on its performance rollup

Revision ID: 0018_fill_totals
Revises: 0017_orders_plan_index
Create Date: 2026-12-07 06:00:00

The Trades page over a whole run summed, counted and grouped every fill of the run at each
look: on a year of history, 1.7x its time on a day. A closed session's fills no longer
change, so its rollup keeps their count, notional, fees, realized PnL, wins, losses, first
and last time and symbols (``db.fill_totals``); the page sums them with the open day's
rows. The fill totals of the rollups written before, and every run's missing rollups, are
written at the end of the upgrade to the newest schema (``db.backfill``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_fill_totals"
down_revision: str | Sequence[str] | None = "0017_orders_plan_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "fill_count": sa.Integer, "fill_notional": sa.Float, "fill_fees": sa.Float,
    "fill_realized": sa.Float, "fill_wins": sa.Integer, "fill_losses": sa.Integer,
    "fill_first": lambda: sa.DateTime(timezone=True),
    "fill_last": lambda: sa.DateTime(timezone=True), "fill_symbols": sa.Text,
}


def upgrade() -> None:
    with op.batch_alter_table("performance_rollups") as batch:
        for name, kind in COLUMNS.items():
            batch.add_column(sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("performance_rollups") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
