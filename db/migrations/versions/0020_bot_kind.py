"""bot kind: a replay registers under its run name, apart from the fleet's live bots

Revision ID: 0020_bot_kind
Revises: 0019_trip_results
Create Date: 2026-12-07 14:00:00

A replay took its commands and wrote its heartbeat under BOT_NAME, the live bot's name when
both share a database: it carried out the bot's close-all and marked the bot stopped. It
now registers under its run name as kind ``replay``; the fleet lists the ``live`` ones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_bot_kind"
down_revision: str | Sequence[str] | None = "0019_trip_results"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on SQLite too: a batch copy of ``bots`` would drop the table every
# session and command points at, under enforced foreign keys.
def upgrade() -> None:
    op.add_column("bots", sa.Column("kind", sa.String(16), nullable=False,
                                    server_default="live"))


def downgrade() -> None:
    op.drop_column("bots", "kind")
