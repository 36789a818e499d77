"""run settings: each session records its run's effective settings and their hash

Revision ID: 0006_run_settings
Revises: 0005_replay_finished
Create Date: 2026-12-06 23:30:00

Two replays of the same candles could not be told apart by what they traded with. A
session now stores its run's settings (secrets left out) as canonical JSON and a hash of
them, written when the session opens, so the Replays page lists what differed between two
runs. Rows written before keep NULL, which the page reads as "settings not recorded".

Both columns are nullable with no default, so SQLite adds them in place (``ALTER TABLE ...
ADD COLUMN``), as 0003 did, and never copies ``sessions``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_run_settings"
down_revision: str | Sequence[str] | None = "0005_replay_finished"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("settings", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("settings_hash", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", recreate="never") as batch_op:
        batch_op.drop_column("settings_hash")
        batch_op.drop_column("settings")
