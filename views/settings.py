"""Settings: the configuration the console (and a bot started by it) runs with.

Secrets are shown only as set / not set: the page is the one place an operator would
screenshot and paste into a chat. The database URL's password is hidden too.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from views._common import scrub, settings
from views._tables import table

GROUPS = {
    "Mode and venue": ["trading_mode", "live_trading_confirmed", "exchange", "exchange_sandbox",
                       "exchange_api_key", "exchange_api_secret", "exchange_api_password",
                       "feed", "feed_seed", "feed_exchange", "symbols", "timeframes",
                       "loop_interval_seconds", "client_order_prefix",
                       "trade_sync_cutoff_minutes", "session_timezone"],
    "Paper fill model": ["starting_balance", "maker_fee", "taker_fee", "paper_slippage_cap_pct",
                         "paper_volume_share"],
    "Decisions": ["llm_provider", "llm_model", "llm_base_url", "llm_local", "gemini_api_key",
                  "llm_api_key", "llm_temperature", "llm_max_output_tokens",
                  "llm_timeout_seconds", "llm_min_interval_seconds", "llm_session_cost_cap",
                  "llm_recording", "prompt_token_budget", "entry_value_pct"],
    "Risk caps": ["max_order_value", "max_total_exposure", "max_daily_loss",
                  "max_daily_loss_pct", "max_open_positions", "plan_max_per_symbol",
                  "plan_max_age_minutes", "trail_breakeven_pct", "min_notional",
                  "min_target_fee_multiple", "max_spread_pct", "max_slippage_pct",
                  "stale_ticker_seconds",
                  "circuit_breaker_errors", "circuit_breaker_cooldown_seconds",
                  "order_max_attempts"],
    "Store and console": ["database_url", "bot_name", "console_password",
                          "console_require_password"],
}


def _shown(name: str, value: object) -> str:
    if isinstance(value, SecretStr):
        return "•••• (set)" if value.get_secret_value() else "(not set)"
    if value is None:
        return "(not set)"
    if name == "database_url":
        value = make_url(str(value)).render_as_string(hide_password=True)
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return scrub(value)


cfg = settings()
fields = type(cfg).model_fields
st.header("Settings")
mode = "LIVE — real money" if cfg.trading_mode == "LIVE" else "PAPER"
st.text(f"Mode: {mode} · venue: {cfg.exchange} · feed: {_shown('feed', cfg.feed)}")
listed = {name for names in GROUPS.values() for name in names}
groups = {**GROUPS, "Other": [n for n in fields if n not in listed]}
for title, names in groups.items():
    if not names:
        continue
    st.subheader(title)
    rows = [
        {"setting": (fields[n].alias or n).upper(), "value": _shown(n, getattr(cfg, n))}
        for n in names if n in fields
    ]
    # tall enough for every row: a scrolling settings table hides the risk caps
    table(pd.DataFrame(rows), height=36 * (len(rows) + 1) + 4)
st.caption("Read from the environment, .env and .streamlit/secrets.toml when the page loaded. "
           "Change them there and restart the bot; the console cannot edit them.")
