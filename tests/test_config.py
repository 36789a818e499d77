"""Bad configuration stops startup with a message that names the setting."""

from __future__ import annotations

import pytest

from bot.__main__ import main
from bot.config import ConfigError, Settings, load_settings

BAD_VALUES = {
    "MAX_ORDER_VALUE": "lots",
    "SYMBOLS": "btcusdt",
    "TIMEFRAMES": "5 minutes",
    "EXCHANGE": "no-such-exchange",
    "FEED": "sometimes",
    "TRADING_MODE": "YOLO",
    "LOOP_INTERVAL_SECONDS": "-1",
    "CLIENT_ORDER_PREFIX": "has space",
    "SESSION_TIMEZONE": "Mars/Olympus",
    "TAKER_FEE": "0.5",
    "PLAN_MAX_PER_SYMBOL": "0",
    "BOT_NAME": "a b",
}


def test_defaults_run_on_a_fresh_machine() -> None:
    settings = load_settings()
    assert settings.trading_mode == "PAPER"
    assert settings.exchange == "paper"
    assert settings.feed == "synthetic"
    assert settings.llm_provider == "rules"
    assert settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_each_bad_value_names_its_setting(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, BAD_VALUES[name])
    with pytest.raises(ConfigError, match=f"invalid setting {name}:"):
        load_settings()


def test_every_numeric_setting_rejects_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    numeric = [
        (field.alias or name) for name, field in Settings.model_fields.items()
        if field.annotation in (int, float)
    ]
    assert len(numeric) > 20
    for alias in numeric:
        monkeypatch.setenv(alias, "not-a-number")
        with pytest.raises(ConfigError, match=f"invalid setting {alias}:"):
            load_settings()
        monkeypatch.delenv(alias)


def test_live_needs_an_explicit_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "LIVE")
    monkeypatch.setenv("EXCHANGE", "binance")
    with pytest.raises(ConfigError, match="LIVE_TRADING_CONFIRMED"):
        load_settings()
    monkeypatch.setenv("LIVE_TRADING_CONFIRMED", "true")
    assert load_settings().trading_mode == "LIVE"


def test_an_exchange_without_the_live_opt_in_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """EXCHANGE alone would build the real exchange with its keys under the default PAPER
    mode: real orders with no opt-in, and PAPER on the heartbeat. PAPER on an exchange is
    its sandbox only."""
    from bot.venue.factory import build_venue

    monkeypatch.setenv("EXCHANGE", "binance")
    monkeypatch.setenv("EXCHANGE_API_KEY", "real-key-0123456789")
    with pytest.raises(ConfigError, match="TRADING_MODE=LIVE") as refused:
        load_settings()
    assert "EXCHANGE" in str(refused.value) and "real-key" not in str(refused.value)
    monkeypatch.setenv("EXCHANGE_SANDBOX", "true")
    settings = load_settings()
    assert settings.trading_mode == "PAPER"
    venue = build_venue(settings, lambda *_: None)  # type: ignore[arg-type]
    assert venue.exchange.isSandboxModeEnabled is True  # type: ignore[attr-defined]


def test_secrets_toml_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('GEMINI_API_KEY = "from-toml-123"\n')
    settings = load_settings()
    assert settings.gemini_api_key is not None
    assert settings.gemini_api_key.get_secret_value() == "from-toml-123"
    assert "from-toml-123" not in repr(settings)


def test_cli_refuses_to_start_with_bad_config(monkeypatch, capsys) -> None:
    monkeypatch.setenv("MAX_DAILY_LOSS", "-5")
    assert main(["run", "--iterations", "1"]) == 2
    assert "invalid setting MAX_DAILY_LOSS" in capsys.readouterr().err


FLOAT_SETTINGS = sorted(
    (field.alias or name) for name, field in Settings.model_fields.items() if field.annotation is float
)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_non_finite_numbers_are_named_as_such(name: str, value: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN passes every comparison as False and infinity passes a lower bound: both are
    refused for what they are, not with a message about a bound they do not break."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"invalid setting {name}: .*finite"):
        load_settings()


@pytest.mark.parametrize("url", [
    "garbage", "mysql://user:pw@localhost/db", "sqlite:", "postgresql+nosuchdriver://h/db", "://",
])
def test_a_database_url_that_is_not_sqlite_or_postgresql_is_named(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError, match="invalid setting DATABASE_URL:") as caught:
        load_settings()
    assert "pw" not in str(caught.value)  # a URL's password is a secret: never echoed


def test_a_bad_database_url_exits_2_with_its_name(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Commands that take ``--db`` name a bad URL too, as a setting, with no traceback."""
    assert main(["audit", "--json", "--db", "mysql://user:pw@localhost/db"]) == 2
    err = capsys.readouterr().err
    assert "invalid setting DATABASE_URL: 'mysql' databases are not supported" in err
    assert "pw" not in err and "Traceback" not in err


def test_symbols_of_two_quote_currencies_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cash, equity and every cap are counted in one quote currency (the symbols'): with
    BTC/USDT and ETH/BTC side by side, an ETH/BTC order's value in BTC would be held to caps
    in USDT (MAX_ORDER_VALUE 1000 lets 1000 BTC through) and its exposure added to dollars."""
    monkeypatch.setenv("SYMBOLS", "BTC/USDT,ETH/BTC")
    with pytest.raises(ConfigError, match="invalid setting SYMBOLS:.*one quote currency.*"
                                          "ETH/BTC is quoted in BTC"):
        load_settings()
    monkeypatch.setenv("SYMBOLS", "ETH/BTC,LTC/BTC")
    assert load_settings().symbols == ["ETH/BTC", "LTC/BTC"]
