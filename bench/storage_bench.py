"""Bytes a loop step writes, per step and per day, for the rules and the Gemini engines, and
the size of a long replay's database.

Each case replays into a fresh SQLite file through ``bot.replay.run_replay`` (the live
loop's driver on a simulated clock) and measures the file once its write-ahead log is
checkpointed, less the size of an empty migrated database. A day is 8,640 steps: a live bot
looping every 10 s (``LOOP_INTERVAL_SECONDS``). Gemini asks at every step
(``LLM_MIN_INTERVAL_SECONDS=0``, the upper bound) and is served a recorded answer by the
real client over a mock transport, as ``tests/test_gemini_recording.py`` does: no network,
no key. The long case replays a random walk of 5-minute candles calibrated on
``BTC_USDT-5m.csv`` (log-return drift and volatility, wicks and volumes drawn from it).

    .venv/bin/python bench/storage_bench.py                    # 2,000 steps of each engine
    .venv/bin/python bench/storage_bench.py --long 100000      # and a year of random walk
    .venv/bin/python bench/storage_bench.py --repo ../old      # measure another checkout's code
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CANDLES = HERE.parent / "shared" / "data" / "candles"
STEPS_PER_DAY = 86_400 // 10


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per engine (default 2000)")
    parser.add_argument("--long", type=int, default=0,
                        help="also replay a random walk of this many 5m candles (rules engine)")
    parser.add_argument("--repo", type=Path, default=HERE,
                        help="the checkout whose bot/ and db/ are measured (default this one)")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    return parser.parse_args()


OPTIONS = _parse()
sys.path.insert(0, str(OPTIONS.repo.resolve()))
sys.path.insert(1, str(HERE))  # this checkout's bench helpers, whichever bot/ is measured

import httpx2  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402

from bench.random_walk import random_walk  # noqa: E402
from bot.engine import gemini  # noqa: E402
from bot.replay import ReplayArgs, run_replay  # noqa: E402
from db.migrate import upgrade  # noqa: E402

ANSWER = json.loads((HERE / "tests" / "fixtures" / "gemini" / "hold.json").read_text())


def _recorded_client(_settings) -> genai.Client:
    """The real client, answered by a recorded generateContent body."""
    transport = httpx2.MockTransport(lambda _request: httpx2.Response(200, json=ANSWER))
    return genai.Client(api_key="bench-key", http_options=types.HttpOptions(
        client_args={"transport": transport}))


def _stored_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def _tables(path: Path) -> dict[str, int]:
    """Bytes of each table and index (its pages), largest first, where SQLite was built with
    the ``dbstat`` table (Python's 3.40.1 here is); else none are printed."""
    with sqlite3.connect(path) as conn:
        try:
            rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name "
                                "ORDER BY 2 DESC").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {name: int(size) for name, size in rows}


def replay_size(files: list[Path], engine: str, steps: int | None, balance: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="storage-bench-") as folder:
        empty = Path(folder) / "empty.db"
        upgrade(f"sqlite:///{empty}")
        base = _stored_bytes(empty)
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        summary = run_replay(ReplayArgs(candles=files, db_url=f"sqlite:///{path}",
                                        engine=engine, balance=balance),
                             progress=False, max_steps=steps)
        seconds = time.perf_counter() - started
        written = _stored_bytes(path) - base
        tables = _tables(path)
    done = summary["candles"]
    return {"engine": engine, "steps": done, "seconds": round(seconds, 1),
            "bytes": written, "bytes_per_step": round(written / done),
            "mb_per_day": round(written / done * STEPS_PER_DAY / 1e6, 2),
            "fingerprint": summary["fingerprint"], "tables": tables}


def main() -> None:
    os.environ.update({"LLM_MIN_INTERVAL_SECONDS": "0", "LLM_SESSION_COST_CAP": "1000000",
                       "GEMINI_API_KEY": "bench-key"})
    gemini._make_client = _recorded_client  # type: ignore[attr-defined]
    btc = [CANDLES / "BTC_USDT-5m.csv"]
    cases = [replay_size(btc, engine, OPTIONS.steps, 10_000.0) for engine in ("rules", "gemini")]
    if OPTIONS.long:
        with tempfile.TemporaryDirectory(prefix="storage-walk-") as folder:
            walk = random_walk(Path(folder) / "BTC_USDT-5m.csv", OPTIONS.long)
            long = replay_size([walk], "rules", None, 10_000.0)
        long["engine"] = f"rules, {OPTIONS.long:,} random-walk candles"
        long["mb"] = round(long["bytes"] / 1e6, 1)
        long["mb_per_100k_steps"] = round(long["bytes"] / long["steps"] * 100_000 / 1e6, 1)
        cases.append(long)
    print(f"code: {OPTIONS.repo.resolve()}")
    for case in cases:
        if OPTIONS.json:
            print(json.dumps(case))
            continue
        print(f"{case['engine']}: {case['steps']:,} steps in {case['seconds']} s, "
              f"{case['bytes']:,} bytes, {case['bytes_per_step']:,} bytes/step, "
              f"{case['mb_per_day']} MB/day at a 10 s loop, fingerprint {case['fingerprint']}")
        if "mb" in case:
            print(f"  database {case['mb']} MB; {case['mb_per_100k_steps']} MB per 100,000 steps")
        for name, size in case["tables"].items():
            if size > case["bytes"] / 100:  # the tables that hold what a step writes
                print(f"  {name:<40} {size / 1e6:9.2f} MB {size / case['steps']:9,.0f} B/step")


if __name__ == "__main__":
    main()
