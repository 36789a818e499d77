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
nullable with no default, so SQLite adds it in place (see 0003). A downgrade puts each
split prompt back whole, inline in the trace's ``prompt``.
"""

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_compact_storage"
down_revision: str | Sequence[str] | None = "0013_live_orders_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("session_id", "symbol", "timeframe", "timestamp")
VALUES = ("open", "high", "low", "close", "volume")
SYSTEM_JOIN = "\n\n"  # between a prompt's system part and the rest, as ``db.traces`` joins them


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


def _inline_split_prompts() -> None:
    """Give each trace whose prompt is split its whole prompt back, inline (the column before
    0014 held it; ``trace_blobs`` rows stay for the answers that name them). A chunk of
    traces at a time: a year of prompts does not fit in memory."""
    conn = op.get_bind()
    ids = conn.scalars(sa.text("SELECT id FROM llm_traces WHERE system_hash IS NOT NULL")).all()
    read = sa.text(
        "SELECT t.id, s.data, p.data, t.prompt FROM llm_traces t "
        "JOIN trace_blobs s ON s.hash = t.system_hash "
        "LEFT JOIN trace_blobs p ON p.hash = t.prompt_hash WHERE t.id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    for start in range(0, len(ids), 500):
        rows = conn.execute(read, {"ids": ids[start:start + 500]}).all()
        if rows:
                conn.execute(sa.text("UPDATE llm_traces SET prompt = :prompt, prompt_hash = NULL "
                                 "WHERE id = :id"),
                         [{"id": trace_id, "prompt": zlib.decompress(system).decode()
                           + SYSTEM_JOIN
                           + (zlib.decompress(rest).decode() if rest is not None else prompt or "")}
                          for trace_id, system, rest, prompt in rows])


def downgrade() -> None:
    _inline_split_prompts()
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
