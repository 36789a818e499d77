"""bots: several named bots share one database

Revision ID: 0002_bots
Revises: 0001_initial
Create Date: 2026-11-25 06:00:00

A single-bot database moves, losing nothing, under a bot named ``default``: every session
and command is attributed to it, and the one live run (run_name ``live``) is renamed to the
bot's name, because a live run's name is now its bot's name. Its paper fills were booked
under the venue key ``paper:live:live``; they are re-keyed to ``paper:live:default`` so the
fill sync recognises them as booked instead of booking them a second time.

A fresh database (no session, no command, no heartbeat) registers no bot: the fleet and
the bot pickers list a bot once it runs, not a ``default`` that never did.

The new columns never recreate a table: SQLite adds a nullable column with a REFERENCES
clause in place (``ALTER TABLE ... ADD COLUMN``), while the copy-and-move of batch mode
would drop ``sessions``, which every other table points at, under enforced foreign keys.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002_bots"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_BOT = "default"


def upgrade() -> None:
    bots = op.create_table(
        "bots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbols", sa.Text(), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("sessions", "commands"):
        if sqlite:  # in place: ADD COLUMN ... REFERENCES, no copy of the table
            op.execute(f"ALTER TABLE {table} ADD COLUMN bot_id INTEGER REFERENCES bots (id)")
        with op.batch_alter_table(table, recreate="never") as batch_op:
            if not sqlite:
                batch_op.add_column(sa.Column("bot_id", sa.Integer(), nullable=True))
                batch_op.create_foreign_key(f"fk_{table}_bot_id_bots", "bots", ["bot_id"], ["id"])
            batch_op.create_index(f"ix_{table}_bot_id", ["bot_id"], unique=False)

    conn = op.get_bind()
    status = sa.table(
        "bot_status", sa.column("name", sa.String), sa.column("mode", sa.String),
        sa.column("venue", sa.String), sa.column("symbols", sa.Text),
        sa.column("engine", sa.String), sa.column("host", sa.String),
        sa.column("pid", sa.Integer), sa.column("heartbeat_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    known = {row.name: row for row in conn.execute(sa.select(status))}
    # a bot is registered only when something of it is there: a fresh database has none
    owned = any(conn.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first()
                for table in ("sessions", "commands"))
    names = ([DEFAULT_BOT] if owned or DEFAULT_BOT in known else []) + sorted(
        n for n in known if n != DEFAULT_BOT)
    if not names:
        return
    op.bulk_insert(bots, [
        {"name": name, "mode": getattr(known.get(name), "mode", None) or "PAPER",
         "venue": getattr(known.get(name), "venue", None) or "paper",
         "symbols": getattr(known.get(name), "symbols", None) or "",
         "engine": getattr(known.get(name), "engine", None) or "rules",
         "created_at": now, "last_seen_at": getattr(known.get(name), "heartbeat_at", None),
         "host": getattr(known.get(name), "host", None),
         "pid": getattr(known.get(name), "pid", None)}
        for name in names
    ])
    if not owned:  # no session, command or fill to attribute
        return
    default_id = conn.execute(
        sa.text("SELECT id FROM bots WHERE name = :name"), {"name": DEFAULT_BOT}
    ).scalar_one()
    conn.execute(sa.text("UPDATE sessions SET bot_id = :id"), {"id": default_id})
    conn.execute(sa.text("UPDATE commands SET bot_id = :id"), {"id": default_id})
    conn.execute(sa.text(
        "UPDATE sessions SET run_name = :bot WHERE kind = 'live' AND run_name = 'live'"
    ), {"bot": DEFAULT_BOT})
    conn.execute(sa.text("UPDATE trades SET venue = :new WHERE venue = 'paper:live:live'"),
                 {"new": f"paper:live:{DEFAULT_BOT}"})


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.text(
        "UPDATE trades SET venue = 'paper:live:live' WHERE venue = :old"
    ), {"old": f"paper:live:{DEFAULT_BOT}"})
    conn.execute(sa.text(
        "UPDATE sessions SET run_name = 'live' WHERE kind = 'live' AND run_name = :bot"
    ), {"bot": DEFAULT_BOT})
    for table in ("commands", "sessions"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(f"ix_{table}_bot_id")
            batch_op.drop_constraint(f"fk_{table}_bot_id_bots", type_="foreignkey")
            batch_op.drop_column("bot_id")
    op.drop_table("bots")
