"""Run the stateful ledger machine (``tests/ledger_machine.py``) long, on SQLite and PostgreSQL.

    .venv/bin/python bench/stateful_bench.py                       # 10,000 operations on each
    .venv/bin/python bench/stateful_bench.py --operations 2000 --stores sqlite

Each store gets a database of its own (a temporary SQLite file; a PostgreSQL database
created on TEST_POSTGRES_URL's server and dropped afterwards). Examples run until the
operations are spent; a violation is counted and printed (shrunk) and the run goes on with
the next example. Prints, per store: operations run, invariants checked, violations.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from tests.conftest import PG_ADMIN_URL, postgres_database  # noqa: E402
from tests.ledger_machine import LedgerMachine, Violation, machine_for  # noqa: E402


@contextmanager
def store(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/ledger.db"
            upgrade(url)
            yield url
        return
    with postgres_database(PG_ADMIN_URL) as url:
        yield url


def run(kind: str, operations: int, steps: int, shrink: bool) -> dict:
    LedgerMachine.counters.update(operations=0, checks=0, examples=0)
    found: Counter[str] = Counter()
    started = time.monotonic()
    with store(kind) as url:
        machine = machine_for(url)
        while LedgerMachine.counters["operations"] < operations:
            phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
            try:
                run_state_machine_as_test(machine, settings=settings(
                    max_examples=5, stateful_step_count=steps, deadline=None, database=None,
                    phases=phases, suppress_health_check=list(HealthCheck), print_blob=False))
            except Violation as violation:
                name = str(violation).split("]")[0].lstrip("[")
                if not found[name]:
                    print(f"{kind}: {violation}", flush=True)
                found[name] += 1
    return {"store": kind, "operations": LedgerMachine.counters["operations"],
            "invariant_checks": LedgerMachine.counters["checks"],
            "examples": LedgerMachine.counters["examples"],
            "violations": sum(found.values()), "by_invariant": dict(found),
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=10_000,
                        help="operations to run on each store (default 10000)")
    parser.add_argument("--steps", type=int, default=200, help="operations per example")
    parser.add_argument("--stores", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres")
    parser.add_argument("--shrink", action="store_true",
                        help="shrink each violation to a minimal example (slower)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the machine injects faults; their logs are noise here
    for kind in args.stores.split(","):
        result = run(kind.strip(), args.operations, args.steps, args.shrink)
        print(f"{result['store']}: {result['operations']} operations, "
              f"{result['invariant_checks']} invariant checks, {result['violations']} "
              f"violations {result['by_invariant']} in {result['examples']} examples, "
              f"{result['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
