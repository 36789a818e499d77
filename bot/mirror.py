"""What the loop last read from or wrote to its own rows, so a step can skip doing it again.

The loop read back, at every iteration, rows only it writes (the newest stored candle, the
booked fill ids of the sync window) and rewrote snapshots that had not changed; that was
most of the statements of the steps around the decision. Each copy starts empty, so the
first use after a start reads or writes the database as before, and a written value is
recorded only after the transaction that wrote it committed: a SIGKILL or a failed commit
can leave a copy missing, never wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# (trading session id, symbol, timeframe): the newest stored candle as
# (timestamp, open, high, low, close, volume), or None when none is stored
CandleKey = tuple[int, str, str]
CandleTip = tuple[datetime, Any, Any, Any, Any, Any] | None


@dataclass
class StoreMirror:
    candle_tips: dict[CandleKey, CandleTip] = field(default_factory=dict)
    # venue trade ids of the current sync window known to be booked in ``trades``
    booked_fills: set[str] = field(default_factory=set)
    # (trading session id, rows) last committed to the snapshot tables; positions without
    # their timestamp, which every write refreshes
    open_orders: tuple[int, list[dict[str, Any]]] | None = None
    positions: tuple[int, list[tuple[str, float, float]]] | None = None
