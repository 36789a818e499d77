"""Several bots on one PostgreSQL: loop time per iteration and connections, 1 then 4 bots.

Real ``python -m bot run --name ...`` processes on the paper venue over replayed candles.
The paper venue keeps its whole account in the database, so an iteration's time is almost
all database time; each bot writes the last iteration's step timings to ``bot_status``,
which this samples (every loop_count seen once). Connections are counted from
``pg_stat_activity`` for the bench's own database, the sampler's connection excluded.

Goal (issue 10): p99 with 4 bots within 2x of 1 bot; connections bounded by the pools
(per bot: the SQLAlchemy pool of 5 + 2 overflow, the lock connection, the LISTEN one).

    .venv/bin/python bench/fleet_bench.py [--seconds 20] [--candles PATH]

Needs PostgreSQL (scripts/postgres.sh); TEST_POSTGRES_URL names another server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db.migrate import upgrade  # noqa: E402

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://tradedesk:tradedesk@127.0.0.1:5432/postgres"
)
DEFAULT_CANDLES = ROOT.parent / "shared" / "data" / "candles" / "BTC_USDT-5m.csv"
PER_BOT_BOUND = 5 + 2 + 1 + 1  # pool_size + max_overflow + lock + LISTEN
# steps whose time is mostly the engine's CPU (indicators, the rules), not the store's
CPU_STEPS = ("decide",)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _wait_until_running(conn, names: list[str], processes: list[subprocess.Popen]) -> None:
    """Start-up (imports, book, first session) is not loop time: sample once all beat."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        running = conn.execute(text(
            "SELECT count(*) FROM bot_status WHERE name = ANY(:names) AND loop_count > 0"
        ), {"names": names}).scalar()
        conn.commit()
        if running == len(names):
            return
        if any(p.poll() is not None for p in processes):
            break
        time.sleep(0.2)
    raise RuntimeError("the bots did not all start looping")


def run_phase(url: str, bots: int, seconds: float, candles: Path) -> dict[str, float]:
    """Start ``bots`` processes, sample for ``seconds``, stop them; the phase's figures."""
    env = {**os.environ, "DATABASE_URL": url, "FEED": f"replay:{candles}",
           "LOOP_INTERVAL_SECONDS": "0.2", "LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT)}
    tag = uuid.uuid4().hex[:4]
    names = [f"bench{tag}{i}" for i in range(bots)]
    processes = [subprocess.Popen([sys.executable, "-m", "bot", "run", "--name", name],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
                 for name in names]
    sampler = create_engine(url, pool_size=1)
    seen: dict[tuple[str, int], float] = {}
    seen_store: dict[tuple[str, int], float] = {}
    peak_connections = 0
    try:
        with sampler.connect() as conn:
            _wait_until_running(conn, names, processes)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                rows = conn.execute(text(
                    "SELECT name, loop_count, step_durations FROM bot_status "
                    "WHERE name = ANY(:names)"), {"names": names}).all()
                for name, count, steps in rows:
                    if count and steps and (name, count) not in seen:
                        seen[(name, count)] = float(sum(steps.values()))
                        seen_store[(name, count)] = float(
                            sum(v for k, v in steps.items() if k not in CPU_STEPS))
                held = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
                peak_connections = max(peak_connections, int(held or 0))
                conn.commit()
                time.sleep(0.05)
                for process in processes:
                    if process.poll() is not None:
                        err = process.stderr.read().decode() if process.stderr else ""
                        raise RuntimeError(f"a bot exited early ({process.returncode}): {err}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        sampler.dispose()
    loop_ms = list(seen.values())
    store_ms = list(seen_store.values())
    return {"bots": bots, "iterations": len(loop_ms),
            "store_p50_ms": percentile(store_ms, 0.5), "store_p99_ms": percentile(store_ms, 0.99),
            "p50_ms": percentile(loop_ms, 0.5), "p99_ms": percentile(loop_ms, 0.99),
            "mean_ms": statistics.fmean(loop_ms) if loop_ms else float("nan"),
            "connections_peak": peak_connections, "connections_bound": bots * PER_BOT_BOUND}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="sampling time per phase")
    parser.add_argument("--candles", type=Path, default=DEFAULT_CANDLES)
    args = parser.parse_args()
    if not args.candles.exists():
        print(f"skipped: {args.candles} is absent")
        return 0
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"td_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"skipped: PostgreSQL not reachable at {ADMIN_URL} ({type(exc).__name__})")
        return 0
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        results = [run_phase(url, bots, args.seconds, args.candles) for bots in (1, 4)]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(f"cpus: {os.cpu_count()}; loop = all steps; store = all but {', '.join(CPU_STEPS)}")
    print(f"{'bots':>4} {'iters':>6} {'loop p50':>9} {'loop p99':>9} {'store p50':>10} "
          f"{'store p99':>10} {'conns':>6} {'bound':>6}")
    for r in results:
        print(f"{r['bots']:>4} {r['iterations']:>6} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
              f"{r['store_p50_ms']:>10.1f} {r['store_p99_ms']:>10.1f} "
              f"{r['connections_peak']:>6} {r['connections_bound']:>6}")
    one, four = results
    ratio = four["p99_ms"] / one["p99_ms"] if one["p99_ms"] else float("nan")
    store = four["store_p99_ms"] / one["store_p99_ms"] if one["store_p99_ms"] else float("nan")
    print(f"p99 4 bots / 1 bot: loop {ratio:.2f}x, store {store:.2f}x (goal <= 2x); "
          f"connections within bound: {four['connections_peak'] <= four['connections_bound']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
