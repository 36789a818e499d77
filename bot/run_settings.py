"""A run's effective settings as recorded with it: what it traded with, never its secrets.

Each session of a run stores the record and its hash (``sessions.settings``), so two replays
(or a replay and a live day) can be compared by what differed between them. The record is
every setting except the secrets (the fields typed ``SecretStr``) and the few that say
where a run is stored or how the console behaves rather than how the run trades; a replay
adds its candle files and its dates. The hash is of the sorted, canonical JSON, so it is
the same for the same settings on any machine and in any order of the environment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from bot.config import ConfigError, Settings

# not how a run trades: where it is stored (a database URL may hold a password too) and
# what the console may open
NOT_RECORDED = frozenset({"database_url", "replay_folders", "console_require_password"})
NOT_RECORDED_TEXT = "settings not recorded"

# the options ``python -m bot replay`` and the Replays form take besides the engine, the
# dates and the balance: command-line flag -> setting
REPLAY_OPTIONS: dict[str, str] = {
    "model": "LLM_MODEL",
    "maker-fee": "MAKER_FEE",
    "taker-fee": "TAKER_FEE",
    "slippage-cap-pct": "PAPER_SLIPPAGE_CAP_PCT",
    "entry-value-pct": "ENTRY_VALUE_PCT",
    "max-order-value": "MAX_ORDER_VALUE",
    "max-total-exposure": "MAX_TOTAL_EXPOSURE",
    "max-daily-loss": "MAX_DAILY_LOSS",
    "max-daily-loss-pct": "MAX_DAILY_LOSS_PCT",
    "max-open-positions": "MAX_OPEN_POSITIONS",
    "max-slippage-pct": "MAX_SLIPPAGE_PCT",
    "plan-max-age-minutes": "PLAN_MAX_AGE_MINUTES",
    "trail-breakeven-pct": "TRAIL_BREAKEVEN_PCT",
    "min-target-fee-multiple": "MIN_TARGET_FEE_MULTIPLE",
}

# words for the settings whose names do not say it themselves
WORDS = {
    "llm_provider": "Engine", "llm_model": "Model", "prompt_version": "Prompt version",
    "feed": "Market", "start": "Start", "end": "End", "timeframes": "Timeframes",
    "paper_slippage_cap_pct": "Slippage cap (paper venue) %",
    "paper_volume_share": "Share of candle volume filled (paper venue)",
    "max_slippage_pct": "Max slippage (risk) %",
    "stoploss_on_exchange": "Stop-loss on exchange",
}
ABBREVIATIONS = {"llm": "LLM", "pct": "%"}


def _is_secret(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def settings_record(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Every recorded setting by field name, as JSON values, plus ``extra`` (the prompt
    version, a replay's files and dates). Secrets are left out by their type, so a secret
    added later is left out too."""
    record = settings.model_dump(
        mode="json", exclude={name for name in Settings.model_fields
                              if _is_secret(name) or name in NOT_RECORDED})
    return {name: _password_masked(value) for name, value in record.items()} | extra


def _password_masked(value: Any) -> Any:
    """A URL's password as ``***`` (a proxy's URL may carry one); any other value as is."""
    if not isinstance(value, str) or "@" not in value:
        return value
    parts = urlsplit(value)
    if not parts.scheme or parts.password is None:
        return value
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def settings_hash(record: Mapping[str, Any]) -> str:
    """A stable hash of a record: its canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()[:16]


def canonical_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def setting_words(name: str) -> str:
    """A setting's name in words: ``max_daily_loss_pct`` -> ``Max daily loss %``."""
    if name in WORDS:
        return WORDS[name]
    first, *rest = [ABBREVIATIONS.get(word, word) for word in name.split("_")]
    return " ".join([first[:1].upper() + first[1:], *rest])


def shown_value(value: Any) -> str:
    """A recorded value as a page shows it."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown_value(v) for v in value)
    return str(value)


def settings_diff(records: Mapping[str, Mapping[str, Any] | None]) -> list[dict[str, str]]:
    """The settings that differ between runs: one row per setting, in words, with each
    run's value under its name, in the order of the settings' names.

    A run recorded before settings were (None) is no evidence of a difference: its column
    says ``settings not recorded`` and only the recorded runs are compared.
    """
    recorded = [r for r in records.values() if r is not None]
    names = sorted({name for r in recorded for name in r})
    rows = []
    for name in names:
        values = {canonical_json({"v": r.get(name)}) for r in recorded}
        if len(values) < 2:
            continue
        row = {"setting": setting_words(name)}
        for run, record in records.items():
            row[run] = NOT_RECORDED_TEXT if record is None else shown_value(record.get(name))
        rows.append(row)
    return rows


def replay_overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a replay's options set (flag -> value, None meaning unset)."""
    return {REPLAY_OPTIONS[flag]: value for flag, value in options.items()
            if value is not None}


def replay_flags(options: Mapping[str, Any]) -> list[str]:
    """The command-line flags of a replay's options (flag -> value, None meaning unset)."""
    return [part for flag, value in options.items() if value is not None
            for part in (f"--{flag}", str(value))]


def option_origins(settings: Mapping[str, Any]) -> dict[str, str]:
    """Setting -> the flag that sets it, for the replay options among ``settings``."""
    flags = {setting: flag for flag, setting in REPLAY_OPTIONS.items()}
    return {name: f"--{flags[name]}" for name in settings if name in flags}


def flag_named(error: ConfigError, origins: Mapping[str, str]) -> ConfigError:
    """The error with each setting named by where its value came from too (``origins``:
    setting -> a flag, or words such as ``10% of --balance 5``), so a setting the user
    never wrote is traced back to what they did write."""
    message = str(error)
    for setting, origin in origins.items():
        message = message.replace(f"invalid setting {setting}:",
                                  f"invalid setting {setting} ({origin}):")
    return ConfigError(message)
