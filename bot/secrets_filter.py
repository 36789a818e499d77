"""The one secrets scrubber: text meant for people (logs, stored errors, pages) loses every
configured secret value and every signed request parameter before anyone reads it.

Pure (no venue, engine or storage import), so the console's pages use it too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Signed query strings (exchange requests echoed in errors) are replayable for a short
# while; they never need to be shown.
SIGNATURE_RE = re.compile(r"(signature|sign|api_?key|apikey)=[^&\s\"']+", re.IGNORECASE)


def scrub(text: object, secrets: Iterable[str]) -> str:
    """``text`` (``None`` is empty) with each secret value and request signature masked."""
    out = "" if text is None else str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return SIGNATURE_RE.sub(lambda m: f"{m.group(1)}={MASK}", out)


def scrub_deep(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (JSON-like: strings in lists and dicts) with every string scrubbed."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_deep(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: scrub_deep(item, secrets) for key, item in value.items()}
    return value


class SecretScrubber(logging.Filter):
    """Scrubs every log record: its message, its traceback and its stack. Secrets shorter
    than 4 characters are left alone, since masking them would garble every line without
    protecting anything.

    An exception's text often quotes what was refused (a rejected token, a signed URL), so
    the traceback is formatted here, scrubbed into ``exc_text`` (which formatters print as
    it is) and ``exc_info`` dropped, so no handler formats the raw exception again."""

    _formatter = logging.Formatter()

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = scrub(record.getMessage(), self.secrets)
            record.args = ()
            if record.exc_info:
                record.exc_text = self._formatter.formatException(record.exc_info)
                record.exc_info = None
            if record.exc_text:
                record.exc_text = scrub(record.exc_text, self.secrets)
            if record.stack_info:
                record.stack_info = scrub(record.stack_info, self.secrets)
        return True


def install_log_scrubber(secrets: list[str]) -> None:
    scrubber = SecretScrubber(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(scrubber)


_logger_scrubbers: dict[str, SecretScrubber] = {}


def mask_in_logger(name: str, secrets: Iterable[str]) -> None:
    """Scrub ``secrets`` from the records of the library logger ``name`` itself, whatever
    handlers the process has (the console installs no scrubber); one filter per logger,
    its secrets added to."""
    scrubber = _logger_scrubbers.get(name)
    if scrubber is None:
        scrubber = _logger_scrubbers[name] = SecretScrubber([])
        logging.getLogger(name).addFilter(scrubber)
    known = set(scrubber.secrets)
    scrubber.secrets += [s for s in dict.fromkeys(secrets) if len(s) >= 4 and s not in known]


# hosts that name a machine, not a credential: never masked (they would garble every line)
_PLAIN_HOST_RE = re.compile(r"^(localhost|[\d.]+|\[[0-9a-f:]+\]|[^:]*\.[^:]*)(:\d+)?$",
                            re.IGNORECASE)
TOKEN_MIN_CHARS = 6


def url_secrets(url: str) -> list[str]:
    """A notification URL and each part of it that may be a token: user and password, a
    host that is no machine's name (``tgram://BOTTOKEN/CHAT``), every path segment and query
    value of TOKEN_MIN_CHARS or more. Libraries log such parts on their own."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    found = [url]
    host = parts.netloc.rsplit("@", 1)[-1]
    candidates = [parts.username or "", parts.password or ""]
    if host and not _PLAIN_HOST_RE.match(host):
        candidates += [host, *host.split(":")]
    candidates += [unquote(segment) for segment in parts.path.split("/")]
    candidates += [value for _, value in parse_qsl(parts.query)]
    found += [c for c in candidates if len(c) >= TOKEN_MIN_CHARS]
    return list(dict.fromkeys(found))
