"""SIGKILL a replay at 50 random moments, restarting it each time, and count what broke.

Prints kills survived, fills lost and fills duplicated (both must be 0) against an
uninterrupted run of the same file, and the audit's verdict; bench/reliability.py prints
the same figures beside the fault, soak and secrets ones. The CI version of this is
tests/test_kill.py (6 kills); this is the long one. Usage: python bench/kill_bench.py [KILLS]
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "candles" / "BTC_USDT-5m.csv"
CANDLES = 1500


def replay(cut: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "bot", "replay", "--candles", str(cut), "--db",
            f"sqlite:///{db}", "--json"]


def fills(db: Path) -> Counter:
    with sqlite3.connect(db) as con:
        rows = con.execute("select timestamp, symbol, action, round(quantity, 10), "
                           "round(price, 8) from trades").fetchall()
    return Counter(rows)


def run(kills: int = 50, seed: int = 7) -> dict[str, object]:
    """Kill, restart, finish; the figures against an uninterrupted run of the same cut."""
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is absent: the shared candle data must be beside the checkout")
    work = Path(tempfile.mkdtemp(prefix="kill-bench-"))
    cut = work / SOURCE.name
    cut.write_text("".join(SOURCE.read_text().splitlines(keepends=True)[: CANDLES + 1]))
    reference, killed = work / "reference.db", work / "killed.db"
    started = time.monotonic()
    subprocess.run(replay(cut, reference), cwd=ROOT, check=True, capture_output=True)
    one_run = time.monotonic() - started
    rng = random.Random(seed)
    survived = 0
    for _ in range(kills):
        process = subprocess.Popen(replay(cut, killed), cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, max(1.5, one_run / 4)))
        if process.poll() is None:
            process.kill()
            survived += 1
        process.wait()
    subprocess.run(replay(cut, killed), cwd=ROOT, check=True, capture_output=True)
    audit = subprocess.run([sys.executable, "-m", "bot", "audit", "--db", f"sqlite:///{killed}",
                            "--json"], cwd=ROOT, capture_output=True, text=True)
    expected, got = fills(reference), fills(killed)
    lost = sum((expected - got).values())
    duplicated = sum((got - expected).values())
    return {"candles replayed": CANDLES, "kills survived": f"{survived} of {kills}",
            "fills in uninterrupted run": sum(expected.values()),
            "fills lost to kills": lost, "fills duplicated by kills": duplicated,
            "audit clean after kills": json.loads(audit.stdout)["ok"]}


def main(kills: int) -> int:
    figures = run(kills)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    broken = figures["fills lost to kills"] or figures["fills duplicated by kills"]
    return 1 if broken or not figures["audit clean after kills"] else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
