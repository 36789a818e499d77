"""Hostile candle files (issue 16 §2): each is refused before the run starts, by
``python -m bot replay`` with a non-zero exit, a message naming the file, the row and what is
wrong, no traceback, and the database untouched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.__main__ import main

FIVE_MIN = 300_000
START_MS = 1_672_675_500_000  # 2023-01-02 16:05 UTC
ROWS = 260  # past the replay's 200-candle warm-up, so a good file runs


def _rows() -> list[list[float]]:
    rows, price = [], 100.0
    for i in range(ROWS):
        close = price * (1.001 if i % 3 else 0.998)
        rows.append([START_MS + i * FIVE_MIN, price, max(price, close) + 0.5,
                     min(price, close) - 0.5, close, 10.0 + i % 7])
        price = close
    return rows


def _text(rows: list[list[float]]) -> str:
    body = "".join(",".join(repr(v) if isinstance(v, float) else str(v) for v in r) + "\n"
                   for r in rows)
    return "timestamp,open,high,low,close,volume\n" + body


def _with(row: int, **change: float) -> Callable[[], bytes]:
    columns = {"timestamp": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}

    def build() -> bytes:
        rows = _rows()
        for name, value in change.items():
            rows[row - 2][columns[name]] = value
        return _text(rows).encode()
    return build


def _all_zero() -> bytes:
    return _text([[START_MS + i * FIVE_MIN, 0.0, 0.0, 0.0, 0.0, 0.0] for i in range(ROWS)]).encode()


def _seconds() -> bytes:
    return _text([[r[0] // 1000, *r[1:]] for r in _rows()]).encode()


def _microseconds() -> bytes:
    return _text([[r[0] * 1000, *r[1:]] for r in _rows()]).encode()


def _not_utf8() -> bytes:
    lines = _text(_rows()).encode().split(b"\n")
    lines[40] = lines[40].replace(b",10", b",1\xff\xfe0", 1)
    return b"\n".join(lines)


def _huge_line() -> bytes:
    lines = _text(_rows()).encode().split(b"\n")
    lines[30] = lines[30] + b"0" * (8 * 1024 * 1024)
    return b"\n".join(lines)


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "zero price": (_with(120, close=0.0), r"row 120: .*close .*not positive"),
    "zero low": (_with(90, low=0.0), r"row 90: .*low .*not positive"),
    "all zero": (_all_zero, r"row 2: .*not positive"),
    "high below low": (_with(77, high=90.0, low=95.0), r"row 77: .*high .*below .*low"),
    "close above high": (_with(150, close=300.0), r"row 150: .*close .*above .*high"),
    "open below low": (_with(66, open=1.0), r"row 66: .*open .*below .*low"),
    "timestamps in seconds": (_seconds, r"row 2: .*seconds.*milliseconds"),
    "timestamps in microseconds": (_microseconds, r"row 2: .*microseconds.*milliseconds"),
    "not utf-8": (_not_utf8, r"row 41: .*UTF-8"),
    "50 MB line": (_huge_line, r"row 31: .*longer than"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_candle_file_is_refused_before_the_run(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, expected = HOSTILE[case]
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_bytes(build())
    database = tmp_path / "replays.db"
    code = main(["replay", "--candles", str(path), "--db", f"sqlite:///{database}", "--json"])
    out, err = capsys.readouterr()
    assert code != 0, f"{case}: exit 0 with {out!r}"
    assert str(path) in err
    import re
    assert re.search(expected, err), f"{case}: {err!r}"
    assert "Traceback" not in err and out == ""
    assert not database.exists(), "the database is created before the input was validated"


@pytest.mark.slow
def test_a_good_file_of_the_same_shape_runs(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The cases above fail for what they change, not for the file they start from."""
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(_text(_rows()))
    assert main(["replay", "--candles", str(path), "--db", f"sqlite:///{tmp_path / 'r.db'}",
                 "--json"]) == 0
    assert '"fingerprint"' in capsys.readouterr().out
