"""Sending notifications from a worker thread: the caller only puts an event on a bounded
queue, never waits for a network, and never sees a failure.

A message that apprise cannot deliver is retried (backoff doubling from ``retry_delay``);
one that still fails, or an event that finds the queue full, is logged and counted in
``failures`` (the bot's heartbeat shows the count). The URLs carry tokens: they are never
logged here, and the bot's log scrubber masks them in apprise's own lines.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import apprise

from bot.alerts.batching import Batcher, Message
from bot.model.events import Event
from bot.secrets_filter import mask_in_logger, scrub, url_secrets

log = logging.getLogger("tradedesk.alerts")
QUEUE_CAPACITY = 1000
ATTEMPTS = 3
_CLOSE = object()


class Delivery:
    def __init__(self, urls: list[str], *, min_interval: float, attempts: int = ATTEMPTS,
                 retry_delay: float = 1.0, capacity: int = QUEUE_CAPACITY,
                 secrets: list[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._batcher = Batcher(min_interval)
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._clock = clock
        # a message quotes stored text (a command's result, a bot's last error): no secret
        # of this process leaves it
        mine = [part for url in urls for part in url_secrets(url)]
        self._secrets = [secret for secret in [*(secrets or []), *mine] if len(secret) >= 4]
        # apprise logs its URLs' users, from the first ``add`` on, and the console has no
        # scrubber of its own: its logger masks them in any process
        mask_in_logger("apprise", self._secrets)
        self._apprise = apprise.Apprise()
        for url in urls:
            self._apprise.add(url)
        self._queue: queue.Queue[object] = queue.Queue(capacity)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._failures = 0
        self.sent = 0  # messages delivered (a burst counts once)
        self._worker = threading.Thread(target=self._run, name="notify", daemon=True)
        self._worker.start()

    @property
    def failures(self) -> int:
        """Messages not delivered after every attempt, and events dropped on a full queue."""
        with self._lock:
            return self._failures

    def submit(self, event: Event) -> None:
        """Queue ``event``; returns at once, whatever becomes of it."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.lost(f"the queue is full ({self._queue.maxsize}); dropped a {event.kind}")

    def close(self, timeout: float = 5.0) -> None:
        """Send what waits, within ``timeout`` seconds: an ending bot is not held up longer."""
        self._closing.set()
        try:
            self._queue.put(_CLOSE, timeout=timeout)
        except queue.Full:
            return
        self._worker.join(timeout)

    def _run(self) -> None:
        while True:
            due = self._batcher.next_due()
            wait = None if due is None else max(0.0, due - self._clock())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _CLOSE:
                for message in self._batcher.drain():
                    self._send(message)
                return
            now = self._clock()
            messages = self._batcher.add(item, now) if isinstance(item, Event) else []
            for message in messages + self._batcher.due(now):
                self._send(message)

    def _send(self, message: Message) -> None:
        error = "refused"
        for attempt in range(self._attempts):
            try:
                if self._apprise.notify(body=scrub(message.body, self._secrets),
                                        title=scrub(message.title, self._secrets)):
                    self.sent += 1
                    return
            except Exception as exc:  # a library fault is a failed attempt, never a crash
                error = type(exc).__name__
            if attempt + 1 < self._attempts and not self._closing.is_set():
                self._closing.wait(self._retry_delay * 2 ** attempt)
        self.lost(f"a {message.kind} message was not delivered after "
                  f"{self._attempts} attempt(s) ({error})")

    def lost(self, what: str) -> None:
        """Count and log a message that is not delivered (``what`` names it, never its text)."""
        with self._lock:
            self._failures += 1
        log.warning("notification failed: %s", what)
