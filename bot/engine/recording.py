"""LLM answers kept by a hash of their request, in a JSON Lines file.

A replay with an LLM costs money once: with a recording, a request already answered is
served from the file (with its recorded usage, so the recorded cost is charged again and the
replay's numbers match), and only new requests reach the API, their answers appended. The
key is the request itself (provider, model, prompt, every turn, tools and schema), so a
changed prompt never replays a stale answer. ``refresh`` (``--record``, and every live run)
asks the API every time and appends what it answers. Lines are flushed one by one: a killed
run keeps every answer it paid for.

A secret is masked in what is written (``bot.secrets_filter``), as in a trace: a model may
echo one. The key hashes the request masked the same way, so the request that follows a
masked answer in a replay (it carries the answer) keys as it did when it was recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.config import ConfigError
from bot.secrets_filter import scrub, scrub_deep

# A secret shorter than this is left alone, as the log scrubber leaves it: masking it would
# garble every answer and key without protecting anything.
MASKED_MIN_CHARS = 4


def request_hash(request: Any, secrets: Iterable[str] = ()) -> str:
    """The SHA-256 of a request's canonical JSON, each secret masked (as written in the
    JSON too, escaped) as ``Recording.put`` masks it in an answer."""
    kept = _maskable(secrets)
    escaped = [json.dumps(secret)[1:-1] for secret in kept]
    text = scrub(json.dumps(request, sort_keys=True, default=str), [*kept, *escaped])
    return hashlib.sha256(text.encode()).hexdigest()


def _maskable(secrets: Iterable[str]) -> list[str]:
    return [secret for secret in secrets if len(secret) >= MASKED_MIN_CHARS]


class RecordingError(ConfigError):
    """A recording path that is no file of recorded answers; the message names it."""


class Recording:
    def __init__(self, path: Path, *, refresh: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise RecordingError(f"{self.path} is a directory, not a recording of LLM answers "
                                 "(a .jsonl file)")
        self.refresh = refresh
        self.hits = 0
        self.misses = 0
        self._answers: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            text = self.path.read_text(encoding="utf-8")
            lines = text.splitlines()
            # Asking every time, only a cut last line needs reading: a live bot's file grows
            # for ever and is not held in memory.
            start = max(len(lines) - 1, 0) if refresh else 0
            for number, line in enumerate(lines[start:], start + 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    self._answers[entry["key"]] = entry["response"]
                except (ValueError, KeyError, TypeError) as exc:
                    if number == len(lines) and not text.endswith("\n"):
                        # The last line, cut by a kill while it was written: drop it, and
                        # its request is asked again.
                        with self.path.open("r+b") as handle:
                            handle.truncate(len(text.encode()) - len(line.encode()))
                        break
                    raise RecordingError(f"{self.path}:{number}: not a recording line: "
                                         f"{exc}") from exc

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded response body, as the SDK's model dumped it; None to ask the API."""
        if self.refresh or key not in self._answers:
            self.misses += 1
            return None
        self.hits += 1
        return self._answers[key]

    def put(self, key: str, response: BaseModel, secrets: Iterable[str] = ()) -> None:
        """Append ``response`` under ``key``, each of ``secrets`` masked in it."""
        data = scrub_deep(response.model_dump(mode="json", exclude_none=True,
                                              exclude={"sdk_http_response"}),
                          _maskable(secrets))
        self._answers[key] = data
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"key": key, "response": data}, sort_keys=True) + "\n")
            out.flush()
