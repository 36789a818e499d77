"""compact storage: candles keyed by what makes them unique; a prompt's system part apart

Revision ID: 0014_compact_storage
Revises: 0013_live_orders_index
Create Date: 2026-12-07 02:20:00

``ohlcv`` loses its surrogate ``id``: its primary key becomes the unique key it had
(session, symbol, timeframe, timestamp). On SQLite the table is then ``WITHOUT ROWID``, so
the key's b-tree holds the rows and no separate unique index repeats every key (about a
third of the candles' bytes). SQLite cannot change a table's key in place, so the rows are
copied into the new table; PostgreSQL drops the column and the constraint and adds the key.

``llm_traces.system_hash`` names the ``trace_blobs`` row of a prompt's system part, the
same at every decision of a bot, so it is stored once; the trace's ``prompt_hash`` then
names the rest. Rows written before keep NULL and read as they did. The column is
nullable with no default, so SQLite adds it in place (see 0003).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_compact_storage"
down_revision: str | Sequence[str] | None = "0013_live_orders_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("session_id", "symbol", "timeframe", "timestamp")
VALUES = ("open", "high", "low", "close", "volume")


def _candle_columns() -> list[sa.Column]:
    return [sa.Column("session_id", sa.Integer(), sa.ForeignKey("sessions.id"), nullable=False),
            sa.Column("symbol", sa.String(length=32), nullable=False),
            sa.Column("timeframe", sa.String(length=8), nullable=False),
            sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(name, sa.Float(), nullable=False) for name in VALUES)]


def upgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("system_hash", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.create_table("ohlcv_keyed", *_candle_columns(), sa.PrimaryKeyConstraint(*KEY),
                        sqlite_with_rowid=False)
        columns = ", ".join((*KEY, *VALUES))
        op.execute(f"INSERT INTO ohlcv_keyed ({columns}) SELECT {columns} FROM ohlcv")
        op.drop_table("ohlcv")
        op.rename_table("ohlcv_keyed", "ohlcv")
        return
    op.drop_constraint("uq_ohlcv_candle", "ohlcv", type_="unique")
    op.drop_column("ohlcv", "id")  # its primary key goes with it
    op.create_primary_key("ohlcv_pkey", "ohlcv", list(KEY))


def downgrade() -> None:
    with op.batch_alter_table("llm_traces", recreate="never") as batch_op:
        batch_op.drop_column("system_hash")
    if op.get_bind().dialect.name == "sqlite":
        op.create_table("ohlcv_ided", sa.Column("id", sa.Integer(), nullable=False),
                        *_candle_columns(), sa.PrimaryKeyConstraint("id"),
                        sa.UniqueConstraint(*KEY, name="uq_ohlcv_candle"))
        columns = ", ".join((*KEY, *VALUES))
        op.execute(f"INSERT INTO ohlcv_ided ({columns}) SELECT {columns} FROM ohlcv "
                   f"ORDER BY timestamp")
        op.drop_table("ohlcv")
        op.rename_table("ohlcv_ided", "ohlcv")
        return
    op.drop_constraint("ohlcv_pkey", "ohlcv", type_="primary")
    op.add_column("ohlcv", sa.Column("id", sa.Integer(), sa.Identity(), nullable=False))
    op.create_primary_key("ohlcv_pkey", "ohlcv", ["id"])
    op.create_unique_constraint("uq_ohlcv_candle", "ohlcv", list(KEY))
