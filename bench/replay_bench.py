"""Replay speed: candles per second, total time and where an iteration's time goes.

Issue 7's goal on this 2-core machine: ``BTC_USDT-5m.csv`` (10,999 candles, 10,800 steps) with the rules
engine on SQLite in under 20 s, and the three 2018 files together, in lockstep, in under
30 s. Each case replays into a fresh SQLite file through ``bot.replay.run_replay`` (the
real loop, every table written) and sums ``rt.step_durations`` after each iteration.

    .venv/bin/python bench/replay_bench.py                 # both cases, whole files
    .venv/bin/python bench/replay_bench.py --steps 1000    # the first 1000 candles
    .venv/bin/python bench/replay_bench.py --case btc --profile /tmp/replay.prof
    .venv/bin/python bench/replay_bench.py --case long --long 105000   # a year of random walk
    .venv/bin/python bench/replay_bench.py --case btc --steps 10 --cli --freqtrade /tmp/ft/bin/python

The ``long`` case replays a random walk of 5-minute candles calibrated on
``BTC_USDT-5m.csv`` (``bench/storage_bench.py`` draws it) and prints the steps/s of each
tenth of the run, so a step that grows slower with history shows as a falling line.
``--cli`` times ``python -m bot replay`` end to end as a user runs it; with ``--freqtrade``
(an interpreter with freqtrade installed: ``bench/freqtrade_backtest.py``) it times
freqtrade's backtest of the same candles in the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.random_walk import random_walk  # noqa: E402
from bot.replay import ReplayArgs, run_replay  # noqa: E402
from bot.runtime import Runtime  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CANDLES = ROOT.parent / "shared" / "data" / "candles"
CASES: dict[str, tuple[list[str], float, float]] = {
    # name: files, starting balance (quote currency), goal in seconds for the whole files
    "btc": (["BTC_USDT-5m.csv"], 10_000.0, 20.0),
    "2018x3": (["ETH_BTC-5m.csv", "LTC_BTC-5m.csv", "ADA_BTC-5m.csv"], 1.0, 30.0),
}


def bench(name: str, steps: int | None, profile: Path | None, long: int) -> dict:
    files, balance, goal = CASES[name] if name != "long" else ([], 10_000.0, 60.0)
    totals: dict[str, float] = defaultdict(float)
    ended_at: list[float] = []  # CPU seconds of this process after each iteration
    per_step: list[dict[str, float]] = []
    clock: list[str] = []  # each step's simulated time, as the store writes it

    def observe(rt: Runtime) -> None:
        ended_at.append(time.process_time())
        clock.append(rt.now().strftime(STORED_TIME))
        per_step.append(dict(rt.step_durations))
        for step, ms in rt.step_durations.items():
            totals[step] += ms

    with tempfile.TemporaryDirectory(prefix="replay-bench-") as folder:
        paths = ([random_walk(Path(folder) / "BTC_USDT-5m.csv", long)] if name == "long"
                 else [CANDLES / f for f in files])
        args = ReplayArgs(candles=paths,
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
        acting = _acting_steps(Path(folder) / "bench.db", cpu_started, ended_at, clock)
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
        "tenths_cpu_steps_per_s": _tenths(cpu_started, ended_at),
        "tenths_step_ms": _tenths_by_step(per_step),
        "acting": acting,
    }


STORED_TIME = "%Y-%m-%d %H:%M:%S.%f"
# the steps whose rows go beyond a quiet step's (a trace, a ticker, an equity step, candles)
ACTING_TIMES = """
    SELECT timestamp FROM trades UNION SELECT created_at FROM orders
    UNION SELECT created_at FROM trade_plan_versions
    UNION SELECT created_at FROM llm_traces WHERE decision_json NOT LIKE '%"action":"HOLD"%'
"""


def _acting_steps(database: Path, started: float, ended_at: list[float],
                  clock: list[str]) -> dict[str, float]:
    """The steps that act (an order, a fill, a plan version, a decision other than HOLD),
    their share of the steps and of the loop's CPU time, and the steps per CPU second a
    replay would reach if it spent nothing at all on the other, quiet steps: the ceiling of
    running the loop only where something can change."""
    with sqlite3.connect(database) as conn:
        times = {row[0] for row in conn.execute(ACTING_TIMES)}
    marks = [started, *ended_at]
    cpu = [marks[i + 1] - marks[i] for i in range(len(ended_at))]
    acting_cpu = sum(c for c, at in zip(cpu, clock, strict=True) if at in times)
    count = sum(at in times for at in clock)
    return {"steps": count, "steps_pct": round(count / max(len(clock), 1) * 100, 1),
            "cpu_pct": round(acting_cpu / max(sum(cpu), 1e-9) * 100, 1),
            "ceiling_steps_per_cpu_s": round(len(clock) / max(acting_cpu, 1e-9))}


def _tenths(started: float, ended_at: list[float]) -> list[float]:
    """Steps per CPU second over each tenth of the run's steps (CPU time: a machine busy
    with other work slows the wall clock, not the work a step does)."""
    marks = [started, *ended_at]
    size = max(1, len(ended_at) // 10)
    return [round(size / max(marks[i + size] - marks[i], 1e-9), 1)
            for i in range(0, len(ended_at) - size + 1, size)][:10]


def _tenths_by_step(per_step: list[dict[str, float]]) -> dict[str, list[float]]:
    """Each loop step's mean milliseconds over each tenth of the run: the step whose time
    grows with the history shows as a rising row."""
    size = max(1, len(per_step) // 10)
    names = sorted({name for durations in per_step for name in durations})
    return {name: [round(sum(d.get(name, 0.0) for d in per_step[i:i + size]) / size, 3)
                   for i in range(0, len(per_step) - size + 1, size)][:10] for name in names}


# Issue 20 measured freqtrade's backtest of a similar EMA/RSI strategy on BTC_USDT-5m.csv on
# this machine, end to end (its CLI, data loading and report included): the figure printed
# when no interpreter with freqtrade is given
FREQTRADE_END_TO_END_S = (12.0, 17.0)
MARKETS = ROOT.parent / "shared" / "fixtures" / "ccxt" / "markets" / "binance.json"


def cli_seconds(name: str) -> float:
    """Wall time of ``python -m bot replay`` on the case's whole files, as a user runs it:
    interpreter start, imports, migrations, the replay and its summary."""
    files, balance, _ = CASES[name]
    with tempfile.TemporaryDirectory(prefix="replay-cli-") as folder:
        return _timed([sys.executable, "-m", "bot", "replay",
                       "--candles", ",".join(str(CANDLES / f) for f in files),
                       "--db", f"sqlite:///{folder}/cli.db", "--balance", str(balance),
                       "--json"])


def freqtrade_seconds(python: str) -> float:
    """Wall time of freqtrade's backtest of BTC_USDT-5m.csv (``bench/freqtrade_backtest.py``)
    run by ``python``, an interpreter with freqtrade installed."""
    return _timed([python, str(ROOT / "bench" / "freqtrade_backtest.py"),
                   str(CANDLES / "BTC_USDT-5m.csv"), str(MARKETS)])


def _timed(command: list[str]) -> float:
    """Wall time of ``command`` run from the repository's root, its output kept out."""
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "long", "all"], default="all")
    parser.add_argument("--long", type=int, default=105_000,
                        help="random-walk candles of the long case (default: a year)")
    parser.add_argument("--steps", type=int, help="stop after this many candles")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here (one case)")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    parser.add_argument("--cli", action="store_true",
                        help="also time `python -m bot replay` end to end on BTC_USDT-5m.csv")
    parser.add_argument("--freqtrade", metavar="PYTHON",
                        help="with --cli: an interpreter with freqtrade installed, to time its "
                             "backtest of the same candles in the same run")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = list(CASES) if options.case == "all" else [options.case]
    for name in names:
        result = bench(name, options.steps, options.profile, options.long)
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
        print("  steps per CPU second by tenth of the run: "
              + " ".join(f"{rate:.0f}" for rate in result["tenths_cpu_steps_per_s"]))
        for step, means in result["tenths_step_ms"].items():
            print(f"    {step:<12} ms/step by tenth: " + " ".join(f"{ms:.2f}" for ms in means))
        acting = result["acting"]
        print(f"  steps that act: {acting['steps']} ({acting['steps_pct']} % of the steps, "
              f"{acting['cpu_pct']} % of the CPU); with every other step free, "
              f"{acting['ceiling_steps_per_cpu_s']} steps per CPU second")
    if options.cli:
        seconds = cli_seconds("btc")
        print(f"python -m bot replay BTC_USDT-5m.csv end to end: {seconds:.1f} s")
        if options.freqtrade:
            theirs = freqtrade_seconds(options.freqtrade)
            print(f"freqtrade's backtest of the same candles end to end: {theirs:.1f} s; "
                  f"ratio {seconds / theirs:.2f}")
        else:
            low, high = FREQTRADE_END_TO_END_S
            print(f"freqtrade's backtest of the same candles took {low:.0f}-{high:.0f} s end "
                  "to end on this machine (issue 20; give --freqtrade PYTHON to time it here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
