"""Failed logins per client address, across every session of this console server.

A guess made while the address is held back is refused without checking the password, so
opening more tabs or sessions does not guess faster: each address gets one guess per
backoff, and the backoff doubles with each wrong password in a row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 300.0
UNKNOWN_ADDRESS = "unknown"  # local or unknown clients share one limit


@dataclass
class _Record:
    failures: int = 0
    allowed_at: float = 0.0


class LoginLimiter:
    """Exponential backoff of login attempts by client address; ``clock`` is monotonic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def wait_s(self, address: str) -> float:
        """Seconds until ``address`` may try a password again (0: now)."""
        with self._lock:
            record = self._records.get(address)
            return 0.0 if record is None else max(record.allowed_at - self.clock(), 0.0)

    def failed(self, address: str) -> float:
        """Count a wrong password; returns the seconds the address now waits."""
        with self._lock:
            record = self._records.setdefault(address, _Record())
            record.failures += 1
            backoff = min(FIRST_BACKOFF_S * 2 ** (record.failures - 1), MAX_BACKOFF_S)
            record.allowed_at = self.clock() + backoff
            return backoff

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._records.pop(address, None)


@st.cache_resource
def login_limiter() -> LoginLimiter:
    """One limiter per server process, shared by every session."""
    return LoginLimiter()


def client_address() -> str:
    """The connection's address (not a header a client could vary per request); anything
    but a non-empty string (no connection, as under AppTest) counts as unknown."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else UNKNOWN_ADDRESS
