"""The MCP server driven by the SDK's own client: in process, over stdio and over streamable
HTTP against a real server process, on a database a real bot loop traded on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from sqlalchemy import select

from bot.config import load_settings
from bot.engine.schema import Action, ActionType, Decision
from bot.mcp_server import build_server
from bot.runtime import Runtime
from bot.steps.commands import obey_commands
from db.bots import register_bot
from db.heartbeat import beat
from db.models import Bot, Command, LLMTrace, Trade
from db.traces import store_blob, trace_texts
from tests.conftest import ROOT, candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.waiting import wait_for

BTC = "BTC/USDT"
READ_TOOLS = {"fleet", "status", "positions", "plans", "trades", "decisions", "trace",
              "performance", "round_trips"}
COMMAND_TOOLS = {"pause", "resume", "close_all", "stop"}
TOKEN = "mcp-test-token-0123456789abcdef"
SECRET = "exchange-key-never-shown-4242"


def bought(url: str) -> Runtime:
    """A bot that bought 0.05 BTC on real candles and holds it."""
    buy = Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, reason="mcp test",
                                   size=0.05)])
    rt = make_runtime(url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([buy]), kind="live",
                      run_name="default")
    step(rt, 3)
    assert rt.book.quantity(BTC) == pytest.approx(0.05)
    return rt


@pytest.fixture
def traded(db_url: str) -> Runtime:
    """``bought`` on SQLite and on PostgreSQL."""
    return bought(db_url)


@pytest.fixture
def traded_sqlite(sqlite_url: str) -> Runtime:
    """``bought`` on SQLite only: for the transports, which need no second store."""
    return bought(sqlite_url)


def run[T](talk: Callable[[Client], Awaitable[T]], server: Any) -> T:
    async def main() -> T:
        async with Client(server) as client:
            return await talk(client)
    return asyncio.run(main())


async def tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def answer(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    content = result.structured_content
    assert content is not None
    return content.get("result", content) if set(content) == {"result"} else content


def commands_of(rt: Runtime) -> list[tuple[str, str, str]]:
    with rt.db() as db:
        return [tuple(r) for r in db.execute(
            select(Bot.name, Command.command, Command.status)
            .join(Bot, Bot.id == Command.bot_id).order_by(Command.id))]


def test_command_tools_exist_only_with_mcp_allow_commands(sqlite_url) -> None:
    for allow, expected in (("false", READ_TOOLS), ("true", READ_TOOLS | COMMAND_TOOLS)):
        settings = load_settings(DATABASE_URL=sqlite_url, MCP_ALLOW_COMMANDS=allow)
        assert run(tool_names, build_server(settings)) == expected


def test_a_listing_limit_outside_1_to_100_is_refused_naming_it(sqlite_url) -> None:
    """SQLite reads LIMIT -1 as no limit at all: an agent must not get a whole history."""
    server = build_server(load_settings(DATABASE_URL=sqlite_url))

    async def talk(client: Client) -> list[Any]:
        return [await client.call_tool(tool, {"bot": "default", "limit": limit})
                for tool in ("trades", "decisions") for limit in (-1, 0, 101)]

    for result in run(talk, server):
        assert result.is_error and "limit" in str(result.content)


@pytest.mark.slow
def test_read_tools_answer_from_the_store_and_commands_are_absent_by_default(
        traded: Runtime) -> None:
    settings = load_settings(DATABASE_URL=traded.settings.database_url,
                             EXCHANGE_API_KEY=SECRET)
    with traded.db() as db:  # a trace and an error that hold a secret: no tool shows it
        trace_id = db.scalars(select(LLMTrace.id).order_by(LLMTrace.id)).first()
        trace = db.get(LLMTrace, trace_id)
        shown = trace_texts(db, {"prompt": trace.prompt, "prompt_hash": trace.prompt_hash})
        trace.prompt_hash = store_blob(db, f"{shown['prompt']} key={SECRET}")  # as stored
        beat(db, "default", datetime.now(UTC), last_error=f"venue refused {SECRET}")
        fills = db.scalar(select(Trade.id).limit(1))
    assert fills is not None

    async def talk(client: Client) -> dict[str, Any]:
        names = await tool_names(client)
        refused = await client.call_tool("pause", {})
        return {
            "names": names, "refused": refused,
            "status": await answer(client, "status"),
            "positions": await answer(client, "positions", bot="default"),
            "plans": await answer(client, "plans"),
            "trades": await answer(client, "trades", limit=5),
            "decisions": await answer(client, "decisions", limit=2),
            "trace": await answer(client, "trace", trace_id=trace_id),
            "performance": await answer(client, "performance"),
            "round_trips": await answer(client, "round_trips"),
            "fleet": await answer(client, "fleet"),
            "unknown": await client.call_tool("status", {"bot": "ghost"}),
        }

    seen = run(talk, build_server(settings))
    assert seen["names"] == READ_TOOLS
    assert seen["refused"].is_error and commands_of(traded) == []
    assert seen["status"]["name"] == "default" and seen["status"]["session"]["trades"] == 1
    assert [(p["symbol"], p["quantity"]) for p in seen["positions"]] == [(BTC, 0.05)]
    assert [p["status"] for p in seen["plans"]] == ["open"]
    assert [t["action"] for t in seen["trades"]] == ["BUY"]
    assert len(seen["decisions"]) == 2
    assert seen["performance"]["total"]["total_trades"] == 1
    assert "total_return_pct" in seen["performance"]["metrics"]
    assert [(t["symbol"], t["closed_at"], t["fills"]) for t in seen["round_trips"]] == [
        (BTC, None, 1)]
    assert [b["name"] for b in seen["fleet"]] == ["default"]
    assert seen["fleet"][0]["last_error"] == "venue refused ***"
    assert seen["status"]["last_error"] == "venue refused ***"
    assert "key=***" in seen["trace"]["prompt"] and SECRET not in json.dumps(seen["trace"])
    assert seen["trace"]["trades"][0]["symbol"] == BTC
    assert seen["unknown"].is_error and "no bot named 'ghost'" in str(seen["unknown"].content)


@pytest.mark.slow
def test_command_tools_queue_for_the_named_bot_only_when_allowed(traded: Runtime) -> None:
    with traded.db() as db:
        register_bot(db, "other", datetime.now(UTC))
        db.commit()
    settings = load_settings(DATABASE_URL=traded.settings.database_url, MCP_ALLOW_COMMANDS="true")

    async def talk(client: Client) -> dict[str, Any]:
        return {
            "names": await tool_names(client),
            "ambiguous": await client.call_tool("pause", {}),
            "paused": await answer(client, "pause", bot="default"),
        }

    seen = run(talk, build_server(settings))
    assert seen["names"] == READ_TOOLS | COMMAND_TOOLS
    assert seen["ambiguous"].is_error and "default, other" in str(seen["ambiguous"].content)
    assert seen["paused"]["bot"] == "default"
    assert commands_of(traded) == [("default", "pause", "pending")]
    # the real bot carries it out, at its next poll: a command queued by another process's
    # store waits out the bot's quiet-poll throttle (bot.store.QUIET_POLL_SECONDS)
    assert wait_for(lambda: obey_commands(traded)) == 1 and traded.paused
    assert commands_of(traded) == [("default", "pause", "done")]


@pytest.mark.slow
def test_stdio_serves_the_sdk_client(traded_sqlite: Runtime) -> None:
    env = {**os.environ, "DATABASE_URL": traded_sqlite.settings.database_url}
    params = StdioServerParameters(command=sys.executable, args=["-m", "bot", "mcp"], env=env,
                                   cwd=ROOT)

    async def talk(client: Client) -> tuple[set[str], Any]:
        return await tool_names(client), await answer(client, "fleet")

    names, fleet = run(talk, params)
    assert names == READ_TOOLS and fleet[0]["name"] == "default"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Every local address a socket listens on ``port`` at (Linux's /proc/net tables)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(socket.inet_ntoa(struct.pack("<I", int(address, 16)))
                          if len(address) == 8 else f"ipv6 {address}")
    return found


@contextmanager
def http_server(url: str, **env: str) -> Iterator[str]:
    """``python -m bot mcp --http`` on a free port; its /mcp URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "mcp", "--http", "--db", url, "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)

    def listening() -> bool:
        assert process.poll() is None, process.communicate()
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, every=0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert TOKEN not in err


@pytest.mark.slow
def test_http_needs_the_bearer_token(traded_sqlite: Runtime) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    with http_server(traded_sqlite.settings.database_url, MCP_TOKEN=TOKEN) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert listening_addresses(port) == {"127.0.0.1"}  # loopback only, by default
        missing = httpx.post(url, json=hello, headers=headers)
        wrong = httpx.post(url, json=hello,
                           headers={**headers, "Authorization": f"Bearer {TOKEN}x"})
        assert (missing.status_code, wrong.status_code) == (401, 401)

        async def talk(client: Client) -> tuple[set[str], Any]:
            return await tool_names(client), await answer(client, "status")

        transport = streamable_http_client(
            url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}))
        names, status = run(talk, transport)
    assert names == READ_TOOLS and status["session"]["trades"] == 1


def test_http_without_a_token_names_the_setting(sqlite_url, capsys) -> None:
    from bot.__main__ import main

    assert main(["mcp", "--http", "--db", sqlite_url]) == 2
    assert "MCP_TOKEN" in capsys.readouterr().err


def test_a_database_that_fails_is_a_tool_error_in_words(tmp_path) -> None:
    empty = f"sqlite:///{tmp_path}/empty.db"  # no schema: every query fails
    server = build_server(load_settings(DATABASE_URL=empty))

    async def talk(client: Client) -> Any:
        return await client.call_tool("status", {})

    result = run(talk, server)
    assert result.is_error and "Database error (OperationalError" in str(result.content)
