"""Keep secrets out of logs: every record is scrubbed of the configured secret values."""

from __future__ import annotations

import logging

MASK = "***"


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class SecretScrubber(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = scrub(record.getMessage(), self.secrets)
            record.args = ()
        return True


def install_log_scrubber(secrets: list[str]) -> None:
    scrubber = SecretScrubber(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(scrubber)
