"""Replay speed: candles per second, total time and where an iteration's time goes.

Issue 7's goal on this 2-core machine: ``BTC_USDT-5m.csv`` (10,999 candles, 10,800 steps) with the rules
engine on SQLite in under 20 s, and the three 2018 files together, in lockstep, in under
30 s. Each case replays into a fresh SQLite file through ``bot.replay.run_replay`` (the
real loop, every table written) and sums ``rt.step_durations`` after each iteration.

    .venv/bin/python bench/replay_bench.py                 # both cases, whole files
    .venv/bin/python bench/replay_bench.py --steps 1000    # the first 1000 candles
    .venv/bin/python bench/replay_bench.py --case btc --profile /tmp/replay.prof
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.replay import ReplayArgs, run_replay  # noqa: E402
from bot.runtime import Runtime  # noqa: E402

CANDLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"
CASES: dict[str, tuple[list[str], float, float]] = {
    # name: files, starting balance (quote currency), goal in seconds for the whole files
    "btc": (["BTC_USDT-5m.csv"], 10_000.0, 20.0),
    "2018x3": (["ETH_BTC-5m.csv", "LTC_BTC-5m.csv", "ADA_BTC-5m.csv"], 1.0, 30.0),
}


def bench(name: str, steps: int | None, profile: Path | None) -> dict:
    files, balance, goal = CASES[name]
    totals: dict[str, float] = defaultdict(float)

    def observe(rt: Runtime) -> None:
        for step, ms in rt.step_durations.items():
            totals[step] += ms

    with tempfile.TemporaryDirectory(prefix="replay-bench-") as folder:
        args = ReplayArgs(candles=[CANDLES / f for f in files],
                          db_url=f"sqlite:///{folder}/bench.db", balance=balance)
        profiler = cProfile.Profile() if profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        summary = run_replay(args, progress=False, observer=observe, max_steps=steps)
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    candles = summary["candles"]
    loop_ms = sum(totals.values())
    return {
        "case": name, "files": files, "candles": candles, "seconds": round(elapsed, 2),
        "candles_per_s": round(candles / elapsed, 1),
        # CPU seconds of this process: comparable between runs on a busy machine
        "cpu_seconds": round(cpu, 2),
        "goal_s": goal if steps is None else None,
        "steps_ms": {step: round(ms) for step, ms in totals.items()},
        "steps_pct": {step: round(ms / loop_ms * 100, 1) for step, ms in totals.items()},
        "outside_steps_ms": round(elapsed * 1000 - loop_ms),
        "trades": summary["trades"], "fingerprint": summary["fingerprint"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--steps", type=int, help="stop after this many candles")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here (one case)")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = list(CASES) if options.case == "all" else [options.case]
    for name in names:
        result = bench(name, options.steps, options.profile)
        if options.json:
            print(json.dumps(result))
            continue
        goal = f" (goal {result['goal_s']:.0f} s)" if result["goal_s"] else ""
        print(f"{name}: {result['candles']} candles in {result['seconds']} s{goal}, "
              f"{result['candles_per_s']} candles/s, {result['cpu_seconds']} s CPU, "
              f"{result['trades']} fills, "
              f"fingerprint {result['fingerprint']}")
        for step, ms in sorted(result["steps_ms"].items(), key=lambda kv: -kv[1]):
            print(f"  {step:<12} {ms / 1000:8.2f} s  {result['steps_pct'][step]:5.1f} %")
        print(f"  {'(outside)':<12} {result['outside_steps_ms'] / 1000:8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
