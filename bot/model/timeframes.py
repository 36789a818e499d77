"""Candle timeframes as ccxt names them (``5m``, ``1h``, ``1d``, ``1w``)."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache

_TIMEFRAME_RE = re.compile(r"^(\d+)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


@cache  # asked for each series at every decision
def timeframe_delta(timeframe: str) -> timedelta:
    """Length of one candle; a timeframe we cannot read is an error, never a guess."""
    match = _TIMEFRAME_RE.match(timeframe)
    if not match:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
