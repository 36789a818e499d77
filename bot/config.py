"""Configuration from the environment, `.env` and `.streamlit/secrets.toml`.

Everything has an embedded default that runs on a fresh machine with no keys and no network
(paper venue, synthetic market, rules engine, SQLite). A bad value stops startup with a
message that names the setting, because a trading bot that guesses is worse than one that
refuses to start.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.model.events import DEFAULT_EVENTS, EventKind
from bot.secrets_filter import mask_in_logger, url_secrets
from db.engine import DEFAULT_DATABASE_URL, check_url

SECRETS_TOML = Path(".streamlit/secrets.toml")
TIMEFRAME_RE = re.compile(r"^\d+[mhd]$")
SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+$")
# a name the command line takes after --bot (no leading "-") and locks, prefixes and URLs carry
BOT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
# Telegram reads this word after a command as the confirmation, never as a bot's name
TELEGRAM_CONFIRM_WORD = "confirm"
MAX_RETAIN_DAYS = 100_000  # more reaches back before the calendar's first day


# The model each provider uses when LLM_MODEL is empty.
DEFAULT_MODELS = {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini",
                  "anthropic": "claude-sonnet-4-5"}
# The SDK's own key variable, which it reads when LLM_API_KEY is not set.
API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
               "gemini": "GOOGLE_API_KEY"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]
CsvInts = Annotated[list[int], NoDecode]


class Settings(BaseSettings):
    """Every knob of the bot and the console. Field names are the environment names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False,
        validate_default=True,
        # NaN fails every bound silently and infinity passes lower ones: neither is a setting
        allow_inf_nan=False,
    )

    # --- store and identity
    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    bot_name: str = Field("default", alias="BOT_NAME")
    # full traces and ticks are kept this many days; older ones are thinned (db.retention)
    # by the bot at each rollover and by ``python -m bot prune``. 0 keeps everything.
    retain_days: int = Field(0, alias="RETAIN_DAYS", ge=0, le=MAX_RETAIN_DAYS)

    # --- mode and venue
    trading_mode: Literal["PAPER", "LIVE"] = Field("PAPER", alias="TRADING_MODE")
    live_trading_confirmed: bool = Field(False, alias="LIVE_TRADING_CONFIRMED")
    exchange: str = Field("paper", alias="EXCHANGE")
    exchange_sandbox: bool = Field(False, alias="EXCHANGE_SANDBOX")
    exchange_api_key: SecretStr | None = Field(None, alias="EXCHANGE_API_KEY")
    exchange_api_secret: SecretStr | None = Field(None, alias="EXCHANGE_API_SECRET")
    exchange_api_password: SecretStr | None = Field(None, alias="EXCHANGE_API_PASSWORD")
    feed: str = Field("synthetic", alias="FEED")
    # Seed 3: the rules engine finds an entry in the tape's last hours whatever the minute of
    # the hour it starts at, so a fresh install trades at once (tests/test_loop.py proves it).
    feed_seed: int = Field(3, alias="FEED_SEED")
    feed_exchange: str = Field("binance", alias="FEED_EXCHANGE")
    symbols: CsvList = Field(["BTC/USDT"], alias="SYMBOLS")
    timeframes: CsvList = Field(["5m", "1h"], alias="TIMEFRAMES")
    loop_interval_seconds: float = Field(10.0, alias="LOOP_INTERVAL_SECONDS", gt=0, le=3600)
    client_order_prefix: str = Field(
        "td", alias="CLIENT_ORDER_PREFIX", pattern=r"^[A-Za-z0-9]{1,12}$"
    )
    trade_sync_cutoff_minutes: int = Field(1440, alias="TRADE_SYNC_CUTOFF_MINUTES", gt=0)
    session_timezone: str = Field("UTC", alias="SESSION_TIMEZONE")
    # this bot's share of an exchange account other bots trade too (quote currency): its
    # cash is this plus its own realized PnL net of fees, less what its positions cost
    available_capital: float | None = Field(None, alias="AVAILABLE_CAPITAL", gt=0)

    # --- paper venue fill model
    starting_balance: float = Field(10_000.0, alias="STARTING_BALANCE", gt=0)
    maker_fee: float = Field(0.001, alias="MAKER_FEE", ge=0, lt=0.05)
    taker_fee: float = Field(0.001, alias="TAKER_FEE", ge=0, lt=0.05)
    paper_slippage_cap_pct: float = Field(1.0, alias="PAPER_SLIPPAGE_CAP_PCT", gt=0, le=50)
    paper_volume_share: float = Field(0.1, alias="PAPER_VOLUME_SHARE", gt=0, le=1)

    # --- decisions
    llm_provider: Literal["rules", "gemini", "openai", "anthropic"] = Field(
        "rules", alias="LLM_PROVIDER")
    # empty: the provider's default (DEFAULT_MODELS); GEMINI_MODEL is the older name
    llm_model: str = Field("", validation_alias=AliasChoices("LLM_MODEL", "GEMINI_MODEL"))
    gemini_api_key: SecretStr | None = Field(None, alias="GEMINI_API_KEY")
    # the key of the openai or anthropic endpoint (or Gemini's); a local server needs none
    llm_api_key: SecretStr | None = Field(None, alias="LLM_API_KEY")
    # an OpenAI-compatible server (Ollama, vLLM, LM Studio, OpenRouter) or Anthropic's URL
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL")
    # a model that costs nothing per token; unset, a base URL on this machine implies it
    # (false: a local proxy in front of a paid API)
    llm_local: bool | None = Field(None, alias="LLM_LOCAL")
    llm_temperature: float = Field(0.2, alias="LLM_TEMPERATURE", ge=0, le=2)
    llm_max_output_tokens: int = Field(4096, alias="LLM_MAX_OUTPUT_TOKENS", gt=0)
    # every answer of a live run is appended here, so its day can be replayed with them;
    # empty: data/llm-answers/BOT_NAME.jsonl
    llm_recording: Path | None = Field(None, alias="LLM_RECORDING")
    llm_timeout_seconds: float = Field(60.0, alias="LLM_TIMEOUT_SECONDS", gt=0)
    llm_min_interval_seconds: float = Field(60.0, alias="LLM_MIN_INTERVAL_SECONDS", ge=0)
    llm_session_cost_cap: float = Field(5.0, alias="LLM_SESSION_COST_CAP", ge=0)
    # the model's training cutoff, over the built-in table (bot/model/training_cutoffs.py)
    llm_training_cutoff: date | None = Field(None, alias="LLM_TRAINING_CUTOFF")
    prompt_token_budget: int = Field(3000, alias="PROMPT_TOKEN_BUDGET", gt=200)
    entry_value_pct: float = Field(5.0, alias="ENTRY_VALUE_PCT", gt=0, le=100)

    # --- risk (the last word over any engine)
    max_order_value: float = Field(1000.0, alias="MAX_ORDER_VALUE", gt=0)
    max_total_exposure: float = Field(5000.0, alias="MAX_TOTAL_EXPOSURE", gt=0)
    max_daily_loss: float = Field(500.0, alias="MAX_DAILY_LOSS", gt=0)
    max_daily_loss_pct: float = Field(5.0, alias="MAX_DAILY_LOSS_PCT", gt=0, le=100)
    max_open_positions: int = Field(5, alias="MAX_OPEN_POSITIONS", gt=0)
    plan_max_per_symbol: int = Field(1, alias="PLAN_MAX_PER_SYMBOL", gt=0)
    plan_max_age_minutes: int = Field(1440, alias="PLAN_MAX_AGE_MINUTES", gt=0)
    trail_breakeven_pct: float = Field(1.0, alias="TRAIL_BREAKEVEN_PCT", ge=0)
    min_notional: float = Field(10.0, alias="MIN_NOTIONAL", ge=0)
    # an entry's target must lie this many round trips' costs (fees, spread, book) above
    # it: at 3 the costs take at most a third of a target's gain; 0 switches the rule off
    min_target_fee_multiple: float = Field(3.0, alias="MIN_TARGET_FEE_MULTIPLE", ge=0, le=1e6)
    max_spread_pct: float = Field(0.5, alias="MAX_SPREAD_PCT", gt=0)
    max_slippage_pct: float = Field(0.5, alias="MAX_SLIPPAGE_PCT", gt=0)
    stale_ticker_seconds: float = Field(180.0, alias="STALE_TICKER_SECONDS", gt=0)
    circuit_breaker_errors: int = Field(5, alias="CIRCUIT_BREAKER_ERRORS", gt=0)
    circuit_breaker_cooldown_seconds: float = Field(
        300.0, alias="CIRCUIT_BREAKER_COOLDOWN_SECONDS", gt=0
    )
    order_max_attempts: int = Field(3, alias="ORDER_MAX_ATTEMPTS", gt=0, le=10)
    # rest each plan's stop on the venue as a stop order once its entry fills, so a dead bot
    # still has its stops (``bot.resting_stop``); refused at start by a venue without them
    stoploss_on_exchange: bool = Field(False, alias="STOPLOSS_ON_EXCHANGE")

    # --- notifications (``bot.alerts``): comma-separated apprise URLs, a secret (they carry
    # tokens), and the event kinds sent to them ("all" for every kind)
    notify_urls: SecretStr | None = Field(None, alias="NOTIFY_URLS")
    notify_events: CsvList = Field([str(k) for k in DEFAULT_EVENTS], alias="NOTIFY_EVENTS")
    # a second message of one kind waits this long; what comes meanwhile is sent as one
    notify_min_interval_seconds: float = Field(
        30.0, alias="NOTIFY_MIN_INTERVAL_SECONDS", ge=0, le=86400
    )

    # --- console
    console_password: SecretStr | None = Field(None, alias="CONSOLE_PASSWORD")
    console_require_password: bool = Field(False, alias="CONSOLE_REQUIRE_PASSWORD")
    # folders, besides the console's data/, whose files the Replays page may read and write
    replay_folders: CsvList = Field([], alias="REPLAY_FOLDERS")

    # --- remote control (``bot.telegram``, ``bot.mcp_server``)
    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    # the chats whose messages are obeyed; every other chat is ignored and logged
    telegram_chat_ids: CsvInts = Field([], alias="TELEGRAM_CHAT_IDS")
    # the Bot API's root; the tests point it at a local stand-in
    telegram_api_base_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_BASE_URL")
    # ``python -m bot run`` answers Telegram too (one bot per token: Telegram lets only one
    # process poll a bot's updates)
    telegram_with_bot: bool = Field(False, alias="TELEGRAM_WITH_BOT")
    mcp_allow_commands: bool = Field(False, alias="MCP_ALLOW_COMMANDS")
    mcp_token: SecretStr | None = Field(None, alias="MCP_TOKEN")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets = TomlConfigSettingsSource(settings_cls, toml_file=SECRETS_TOML)
        return init_settings, env_settings, dotenv_settings, secrets

    _split_lists = field_validator(
        "symbols", "timeframes", "replay_folders", "telegram_chat_ids", "notify_events",
        mode="before")(
        lambda value: _split_csv(value)
    )

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol, e.g. BTC/USDT")
        for symbol in value:
            if not SYMBOL_RE.match(symbol):
                raise ValueError(f"{symbol!r} is not BASE/QUOTE in capitals, e.g. BTC/USDT")
        if len(set(value)) != len(value):
            raise ValueError("a symbol is listed twice")
        # cash, equity and every cap are counted in the symbols' one quote currency
        quote = value[0].split("/")[1]
        other = next((symbol for symbol in value if symbol.split("/")[1] != quote), None)
        if other is not None:
            raise ValueError(f"the symbols must share one quote currency (caps and equity are "
                             f"counted in it): {value[0]} is quoted in {quote}, {other} is "
                             f"quoted in {other.split('/')[1]}")
        return value

    @field_validator("bot_name")
    @classmethod
    def _check_bot_name(cls, value: str) -> str:
        if not BOT_NAME_RE.match(value) or value.lower() == TELEGRAM_CONFIRM_WORD:
            raise ValueError(
                f"{value!r} is not a bot name: 1 to 64 letters, digits, '-' or '_', not "
                f"starting with '-' and not {TELEGRAM_CONFIRM_WORD!r} (commands name the bot: "
                "--bot NAME, /stop NAME), e.g. binance-main")
        return value

    @field_validator("timeframes")
    @classmethod
    def _check_timeframes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one timeframe, e.g. 5m")
        for timeframe in value:
            if not TIMEFRAME_RE.match(timeframe):
                raise ValueError(f"{timeframe!r} is not a timeframe like 1m, 5m, 1h or 1d")
        return value

    @field_validator("notify_events")
    @classmethod
    def _check_notify_events(cls, value: list[str]) -> list[str]:
        if [v.lower() for v in value] == ["all"]:
            return [str(k) for k in EventKind]
        known = {str(k) for k in EventKind}
        for name in value:
            if name not in known:
                raise ValueError(f"{name!r} is not an event kind; known: all, "
                                 + ", ".join(sorted(known)))
        return value

    @field_validator("notify_urls")
    @classmethod
    def _check_notify_urls(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        import apprise

        urls = _split_urls(value.get_secret_value())
        mask_in_logger("apprise", (part for url in urls for part in url_secrets(url)))
        for number, url in enumerate(urls, 1):
            if not apprise.Apprise().add(url):  # the URL itself is a secret: not echoed
                raise ValueError(f"URL number {number} of {len(urls)} is not an apprise URL")
        return value

    @field_validator("feed")
    @classmethod
    def _check_feed(cls, value: str) -> str:
        if value in ("synthetic", "live"):
            return value
        if value.startswith("replay:") and value[len("replay:") :].strip():
            return value
        raise ValueError("must be 'synthetic', 'live' or 'replay:PATH[,PATH...]'")

    @field_validator("llm_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. http://127.0.0.1:11434/v1")
        return value.strip()

    _check_database_url = field_validator("database_url")(lambda value: check_url(value))

    @field_validator("telegram_api_base_url")
    @classmethod
    def _check_telegram_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"{value!r} is not an http(s) URL like https://api.telegram.org")
        return value

    @field_validator("session_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("exchange")
    @classmethod
    def _check_exchange(cls, value: str) -> str:
        value = value.strip().lower()
        if value == "paper":
            return value
        import ccxt

        if value not in ccxt.exchanges:
            raise ValueError(f"{value!r} is neither 'paper' nor a ccxt exchange id")
        return value

    @model_validator(mode="after")
    def _check_live_opt_in(self) -> Settings:
        if self.trading_mode == "LIVE" and not self.live_trading_confirmed:
            raise ValueError(
                "TRADING_MODE=LIVE also needs LIVE_TRADING_CONFIRMED=true: live trading "
                "spends real money and must be switched on deliberately"
            )
        if self.trading_mode == "LIVE" and self.exchange == "paper":
            raise ValueError("TRADING_MODE=LIVE needs EXCHANGE set to a real ccxt exchange")
        # EXCHANGE builds that exchange with its keys: in PAPER only its sandbox, so real
        # money never moves without the opt-in above
        if self.trading_mode == "PAPER" and self.exchange != "paper" and \
                not self.exchange_sandbox:
            raise ValueError(
                f"EXCHANGE={self.exchange} trades on that exchange: real money needs "
                "TRADING_MODE=LIVE and LIVE_TRADING_CONFIRMED=true (or EXCHANGE_SANDBOX=true "
                "for its test environment, or EXCHANGE=paper for the paper venue)")
        if not self.llm_model and self.llm_provider in DEFAULT_MODELS:
            self.llm_model = DEFAULT_MODELS[self.llm_provider]
        if self.llm_provider == "gemini" and self.gemini_api_key is None and \
                self.llm_api_key is None and not os.environ.get(API_KEY_ENV["gemini"]):
            raise ValueError("LLM_PROVIDER=gemini needs GEMINI_API_KEY")
        if self.telegram_with_bot and (problem := self.telegram_problem()):
            raise ValueError(f"TELEGRAM_WITH_BOT=true: {problem}")
        if self.llm_provider in ("openai", "anthropic") and self.llm_api_key is None and \
                not self.llm_base_url and not os.environ.get(API_KEY_ENV[self.llm_provider]):
            raise ValueError(f"LLM_PROVIDER={self.llm_provider} needs LLM_API_KEY, or "
                             "LLM_BASE_URL of a server that needs no key")
        return self

    def telegram_problem(self) -> str | None:
        """Why Telegram control cannot run with these settings, naming the setting; None
        when it can."""
        if self.telegram_bot_token is None:
            return "invalid setting TELEGRAM_BOT_TOKEN: required for Telegram control"
        if not self.telegram_chat_ids:
            return ("invalid setting TELEGRAM_CHAT_IDS: no chat is allowed, so every message "
                    "would be ignored; list the operators' chat ids")
        return None

    @property
    def llm_recording_path(self) -> Path:
        return self.llm_recording or Path("data/llm-answers") / f"{self.bot_name}.jsonl"

    @property
    def llm_is_local(self) -> bool:
        """Whether the model runs on this machine (or is flagged so): it costs nothing."""
        if self.llm_local is not None:
            return self.llm_local
        host = urlsplit(self.llm_base_url or "").hostname or ""
        return host in LOCAL_HOSTS or host.endswith(".localhost")

    @property
    def is_paper(self) -> bool:
        return self.exchange == "paper"

    @property
    def replay_paths(self) -> list[Path]:
        if not self.feed.startswith("replay:"):
            return []
        return [Path(p.strip()) for p in self.feed[len("replay:") :].split(",") if p.strip()]

    @property
    def notify_url_list(self) -> list[str]:
        return _split_urls(self.notify_urls.get_secret_value()) if self.notify_urls else []

    def secret_values(self) -> list[str]:
        """Every secret's plain value, for scrubbing logs, traces and pages: the secret
        settings, the LLM SDKs' own key variables, DATABASE_URL's password (as written, and
        decoded), and a notify URL also by its token parts, which a library may show on their
        own."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        for url in self.notify_url_list:
            values.extend(url_secrets(url))
        values.extend(os.environ[name] for name in API_KEY_ENV.values() if os.environ.get(name))
        written = urlsplit(self.database_url).password  # percent-encoded as written
        if written:
            values.extend(sorted({written, unquote(written)}, key=len, reverse=True))
        return values


def _split_urls(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _describe(error: ValidationError) -> str:
    lines = []
    fields = Settings.model_fields
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:
            lines.append(f"invalid configuration: {message}")
            continue
        name = str(item["loc"][0])
        field = fields.get(name)
        alias = field.alias if field is not None and field.alias else name
        lines.append(f"invalid setting {alias.upper()}: {message}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise ConfigError whose message names each bad setting.

    The overrides are as untyped as the environment is: pydantic validates each one.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
