"""Two replay databases, table by table: does a change to the loop still write the same rows?

Replay the same candles into two SQLite files, once with each checkout, then compare:

    END=2023-01-10T08:00:00+00:00   # the first 2,000 steps of BTC_USDT-5m.csv
    (cd BEFORE && .venv/bin/python -m bot replay --candles .../BTC_USDT-5m.csv --end $END \\
        --db sqlite:////tmp/before.db --json)
    (cd AFTER && .venv/bin/python -m bot replay ... --db sqlite:////tmp/after.db --json)
    .venv/bin/python bench/compare_replay_rows.py /tmp/before.db /tmp/after.db

Every row of every table must be equal, column by column, in the same order, but for what
the wall clock writes: a trace's ``latency_ms``, and the process's own rows (its heartbeat,
its registration, when the run finished). Exits 1 when anything else differs.
"""

from __future__ import annotations

import sqlite3
import sys

# columns the wall clock or the process writes, which differ between any two runs
WALL_CLOCK = {
    "llm_traces": {"latency_ms"},
    "bot_status": {"heartbeat_at", "pid", "host", "started_at", "step_durations"},
    "bots": {"created_at", "last_seen_at", "pid", "host"},
    "paper_clock": {"finished_at"},
}


def compare(before: sqlite3.Connection, after: sqlite3.Connection) -> bool:
    """Print one line per table; True when every table holds the same rows."""
    same = True
    tables = [name for (name,) in before.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    for table in tables:
        columns = [row[1] for row in before.execute(f"PRAGMA table_info({table})")]
        if columns != [row[1] for row in after.execute(f"PRAGMA table_info({table})")]:
            print(f"{table}: the columns differ")
            same = False
            continue
        order = ", ".join(str(i + 1) for i in range(len(columns)))
        rows = [db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for db in (before, after)]
        if len(rows[0]) != len(rows[1]):
            print(f"{table}: {len(rows[0])} rows before, {len(rows[1])} after")
            same = False
            continue
        differing = {column for old, new in zip(*rows, strict=True)
                     for column, a, b in zip(columns, old, new, strict=True) if a != b}
        wall = differing & WALL_CLOCK.get(table, set())
        if differing - wall:
            print(f"{table}: {len(rows[0])} rows, DIFFERENT in {', '.join(sorted(differing))}")
            same = False
        else:
            note = f" (wall clock: {', '.join(sorted(wall))})" if wall else ""
            print(f"{table}: {len(rows[0])} rows, the same{note}")
    return same


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    same = compare(sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2]))
    print("the same rows" if same else "DIFFERENT rows")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
