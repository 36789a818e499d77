"""A run's recorded settings: no secret in them, a stable hash, and what differs between
runs, in words; each replay and each live session stores them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.__main__ import main
from bot.config import load_settings
from bot.model.vocabulary import RunKind
from bot.replay import ReplayArgs, run_replay
from bot.run_settings import (
    NOT_RECORDED_TEXT,
    canonical_json,
    setting_words,
    settings_diff,
    settings_hash,
    settings_record,
)
from db.bots import bot_names
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Session
from db.queries_replays import run_session_ids, run_settings
from tests.loop_harness import make_runtime, step
from tests.test_replay import write_candles

SECRETS = {"GEMINI_API_KEY": "gemini-key-7f3a91", "EXCHANGE_API_SECRET": "exchange-secret-52c8",
           "EXCHANGE_API_KEY": "exchange-key-0d4e", "EXCHANGE_API_PASSWORD": "exchange-pw-9b21",
           "CONSOLE_PASSWORD": "console-pw-6e77"}


@pytest.fixture
def secrets_configured(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


@pytest.fixture
def candles(tmp_path: Path) -> Path:
    closes = [100 + (i % 12) - 0.05 * i for i in range(230)]
    return write_candles(tmp_path / "BTC_USDT-5m.csv", closes)


def test_the_record_holds_the_settings_and_no_secret(secrets_configured: dict[str, str]) -> None:
    settings = load_settings(LLM_PROVIDER="gemini", MAKER_FEE=0.002)
    assert settings.gemini_api_key is not None  # the secrets are configured, not absent
    record = settings_record(settings, prompt_version="v1")
    stored = canonical_json(record)
    for value in secrets_configured.values():
        assert value not in stored
    assert not {"gemini_api_key", "exchange_api_secret", "console_password"} & set(record)
    assert (record["llm_provider"], record["maker_fee"], record["prompt_version"]) == (
        "gemini", 0.002, "v1")
    assert record["symbols"] == ["BTC/USDT"] and "max_order_value" in record
    assert "database_url" not in record  # a URL may carry a password


def test_a_password_in_a_recorded_url_is_masked() -> None:
    """A URL setting other than the database's (an LLM proxy's) may carry a password: the
    record keeps the URL, never the password."""
    settings = load_settings(LLM_BASE_URL="https://team:proxy-pw-31c9@llm.example/v1")
    stored = canonical_json(settings_record(settings))
    assert "proxy-pw-31c9" not in stored
    assert settings_record(settings)["llm_base_url"] == "https://team:***@llm.example/v1"
    plain = load_settings(LLM_BASE_URL="http://localhost:11434/v1")
    assert settings_record(plain)["llm_base_url"] == "http://localhost:11434/v1"


def test_the_hash_is_of_the_canonical_record() -> None:
    record = settings_record(load_settings(), prompt_version="v1")
    reordered = dict(reversed(list(record.items())))
    assert list(reordered) != list(record)
    assert settings_hash(reordered) == settings_hash(record)
    assert settings_hash(record) == settings_hash(
        settings_record(load_settings(), prompt_version="v1"))
    other = settings_record(load_settings(TAKER_FEE=0.0015), prompt_version="v1")
    assert settings_hash(other) != settings_hash(record)
    assert len(settings_hash(record)) == 16


def test_the_diff_lists_what_differs_in_words() -> None:
    base = settings_record(load_settings(), prompt_version="v1")
    cheaper = base | {"maker_fee": 0.0005, "symbols": ["BTC/USDT", "ETH/USDT"]}
    gemini = base | {"llm_provider": "gemini"}
    rows = settings_diff({"a": base, "b": cheaper, "c": gemini, "old": None})
    assert rows == [
        {"setting": "Engine", "a": "rules", "b": "rules", "c": "gemini",
         "old": NOT_RECORDED_TEXT},
        {"setting": "Maker fee", "a": "0.001", "b": "0.0005", "c": "0.001",
         "old": NOT_RECORDED_TEXT},
        {"setting": "Symbols", "a": "BTC/USDT", "b": "BTC/USDT, ETH/USDT", "c": "BTC/USDT",
         "old": NOT_RECORDED_TEXT},
    ]
    assert settings_diff({"a": base, "b": dict(base)}) == []
    assert settings_diff({"a": base, "old": None}) == []  # nothing recorded to differ from
    # a setting one run has and another lacks (added later) differs too
    assert settings_diff({"a": base, "b": base | {"new_rule": 2}}) == [
        {"setting": "New rule", "a": "–", "b": "2"}]


def test_setting_words() -> None:
    assert setting_words("max_daily_loss_pct") == "Max daily loss %"
    assert setting_words("llm_session_cost_cap") == "LLM session cost cap"
    assert setting_words("llm_model") == "Model"


@pytest.mark.slow
def test_replays_with_other_settings_are_other_runs_and_record_them(
        tmp_path: Path, candles: Path, secrets_configured: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'replays.db'}"
    first = run_replay(ReplayArgs([candles], url), progress=False)
    second = run_replay(ReplayArgs([candles], url, overrides={"MAKER_FEE": 0.004}),
                        progress=False)
    assert first["run_name"] != second["run_name"]  # not the first run resumed
    again = run_replay(ReplayArgs([candles], url), progress=False)
    assert again == first  # the same settings are the same run
    factory = session_factory(make_engine(url))
    with factory() as db:
        records = {s["run_name"]: run_settings(db, run_session_ids(db, s["run_name"]))
                   for s in (first, second)}
        stored = list(db.execute(select(Session.settings, Session.settings_hash)))
    assert all(record is not None for record in records.values())
    a, b = records[first["run_name"]], records[second["run_name"]]
    assert a is not None and b is not None
    assert (a["feed"], a["start"], a["end"]) == ("replay:BTC_USDT-5m.csv", None, None)
    assert (a["maker_fee"], b["maker_fee"]) == (0.001, 0.004)
    assert a["max_order_value"] == 1000.0  # the cap as scaled to the balance
    assert [row["setting"] for row in settings_diff(records)] == ["Maker fee"]
    for text, digest in stored:
        assert digest == settings_hash(load_json(text))
        for value in secrets_configured.values():
            assert value not in text


def load_json(text: str) -> dict:
    import json

    return json.loads(text)


def test_a_live_session_records_its_settings(sqlite_url: str, candles: Path) -> None:
    rt = make_runtime(sqlite_url, [candles], run_name="live-bot", MAX_OPEN_POSITIONS=3)
    step(rt)
    with rt.db() as db:
        session = db.get(Session, rt.session_id)
        assert session is not None and session.settings is not None
        record = load_json(session.settings)
    assert record["max_open_positions"] == 3 and "prompt_version" in record
    assert session.settings_hash == settings_hash(record)

    # restarted the same day with another setting: the day's session says what it trades with
    restarted = make_runtime(sqlite_url, [candles], run_name="live-bot", MAX_OPEN_POSITIONS=4)
    step(restarted)
    with restarted.db() as db:
        again = db.get(Session, restarted.session_id)
        assert again is not None and again.settings is not None
        assert again.id == session.id
        assert load_json(again.settings)["max_open_positions"] == 4
        assert again.settings_hash == settings_hash(restarted.run_settings)


@pytest.mark.parametrize(("flags", "named"), [
    (["--start", "last tuesday"], "invalid --start: 'last tuesday' is not an ISO date"),
    (["--end", "2024-13-01"], "invalid --end: '2024-13-01' is not an ISO date"),
    (["--start", "2024-02-01", "--end", "2024-01-01"], "invalid --end: 2024-01-01 is not after"),
    (["--maker-fee", "0.5"], "invalid setting MAKER_FEE (--maker-fee): Input should be less"),
    (["--max-open-positions", "many"], "MAX_OPEN_POSITIONS (--max-open-positions): Input"),
    (["--balance", "-5"], "invalid setting STARTING_BALANCE"),
])
def test_bad_replay_options_are_named_without_a_traceback(
        tmp_path: Path, candles: Path, capsys: pytest.CaptureFixture[str],
        flags: list[str], named: str) -> None:
    code = main(["replay", "--candles", str(candles), "--db",
                 f"sqlite:///{tmp_path / 'r.db'}", "--json", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert named in err
    assert "Traceback" not in err


def test_a_bad_balance_is_named_by_its_flag_not_by_the_caps_derived_from_it(
        tmp_path: Path, candles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The money caps a replay scales to its balance were reported as invalid settings the
    user never set (MAX_ORDER_VALUE named as if --max-order-value were given, MIN_NOTIONAL):
    the balance is what is wrong, said once by its flag; a cap derived from a valid balance
    that still fails (a balance so small that 10% of it is 0) names the flag it came from."""
    def refused(balance: str) -> str:
        code = main(["replay", "--candles", str(candles), "--db",
                     f"sqlite:///{tmp_path / 'r.db'}", "--json", "--balance", balance])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        return err

    negative = refused("-5")
    assert "invalid setting STARTING_BALANCE (--balance -5): Input should be greater than 0" \
        in negative
    assert not [name for name in ("MAX_ORDER_VALUE", "MAX_TOTAL_EXPOSURE", "MAX_DAILY_LOSS",
                                  "MIN_NOTIONAL", "--max-") if name in negative]
    tiny = refused("5e-324")  # positive, but 10% of it rounds to 0
    assert "invalid setting MAX_ORDER_VALUE (10% of --balance 4.94066e-324): Input should be " \
        "greater than 0" in tiny
    assert "STARTING_BALANCE" not in tiny and "--max-order-value" not in tiny


@pytest.mark.parametrize(("flags", "named"), [
    (["--end", "2023-11-01"],
     "invalid --end: 2023-11-01 00:00 UTC is not after the first candle replayed (the files "
     "replay from 2023-11-15 14:50 UTC, after the 200-candle warm-up, to 2023-11-15 17:20 UTC)"),
    (["--start", "2023-12-01T08:00"],
     "invalid --start: 2023-12-01 08:00 UTC is after the last candle replayed (the files "
     "replay from 2023-11-15 14:50 UTC"),
])
def test_a_span_the_files_candles_miss_is_refused_not_replayed(
        tmp_path: Path, candles: Path, capsys: pytest.CaptureFixture[str],
        flags: list[str], named: str) -> None:
    """Dates outside the file replayed it anyway: an --end before the file stepped its
    first candle and bought there, a start after it stepped none; each exited 0 with a
    summary, a run on the Replays page, and nothing said. The span is refused, naming the
    file's own, and no run is registered."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    code = main(["replay", "--candles", str(candles), "--db", url, "--json", *flags])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert named in err
    engine = make_engine(url)
    with session_factory(engine)() as db:
        assert bot_names(db, RunKind.REPLAY) == []
    engine.dispose()
