"""equity steps: the account after each decided step, in a narrow table

Revision ID: 0010_equity_steps
Revises: 0009_trace_blobs
Create Date: 2026-12-06 23:58:00

A run's equity curve and summary parsed the ``execution_result`` of every trace, so the
Replays page grew with the run (29x slower on a year of 5-minute steps than on a short
run). Each decided step now also writes its equity, exposure and prices to
``equity_steps``, in the transaction of its trace's result. The upgrade fills the table
from the traces already written, so every run reads the same way.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_equity_steps"
down_revision: str | Sequence[str] | None = "0009_trace_blobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    steps = op.create_table(
        "equity_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=False),
        sa.Column("prices", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_equity_steps_session_created", "equity_steps",
                    ["session_id", "created_at"], unique=False)
    assert steps is not None
    traces = sa.table("llm_traces", sa.column("id", sa.Integer()),
                      sa.column("session_id", sa.Integer()),
                      sa.column("created_at", sa.DateTime(timezone=True)),
                      sa.column("execution_result", sa.Text()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(traces.c.session_id, traces.c.created_at,
                                  traces.c.execution_result)
                        .where(traces.c.execution_result.is_not(None)).order_by(traces.c.id)
                        ).all()
    batch: list[dict] = []
    for session_id, created_at, result in rows:
        try:
            step = json.loads(result)
        except ValueError:
            continue  # a row written by hand or by another tool is no step
        if not isinstance(step, dict):
            continue
        batch.append({"session_id": session_id, "created_at": created_at,
                      "equity": float(step.get("equity") or 0.0),
                      "exposure": float(step.get("exposure") or 0.0),
                      "prices": json.dumps(step.get("prices") or {})})
        if len(batch) >= BATCH:
            op.bulk_insert(steps, batch)
            batch = []
    if batch:
        op.bulk_insert(steps, batch)


def downgrade() -> None:
    op.drop_index("ix_equity_steps_session_created", table_name="equity_steps")
    op.drop_table("equity_steps")
