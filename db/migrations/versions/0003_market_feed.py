"""market feed: the bot's heartbeat and its sessions say where their prices come from

Revision ID: 0003_market_feed
Revises: 0002_bots
Create Date: 2026-12-03 14:00:00

The console labelled the market (simulated, replayed, live) from its own settings, which
need not be the bot's. The bot now writes its market on its heartbeat at start and on each
session it opens; rows written before keep NULL, which the console reads as unknown.

Both columns are nullable and have no default, so SQLite adds them in place
(``ALTER TABLE ... ADD COLUMN``) and never copies ``sessions``, which every other table
points at (see 0002).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_market_feed"
down_revision: str | Sequence[str] | None = "0002_bots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("bot_status", "sessions")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, recreate="never") as batch_op:
            batch_op.add_column(sa.Column("feed", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in TABLES:  # SQLite 3.35+ drops a column in place too
        with op.batch_alter_table(table, recreate="never") as batch_op:
            batch_op.drop_column("feed")
