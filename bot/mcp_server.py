"""The Model Context Protocol server: AI agents read the bots' state and, when allowed,
queue their commands.

Read tools answer from the console's queries (``bot.remote``). The command tools (pause,
resume, close_all, stop) exist only with ``MCP_ALLOW_COMMANDS=true``: an agent that was not
given them cannot even see them. Over streamable HTTP every request carries
``Authorization: Bearer <MCP_TOKEN>`` (checked by the SDK's own bearer middleware), and the
server binds 127.0.0.1 unless told otherwise; over stdio the agent's host started the
process, which is the permission.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from bot import remote
from bot.config import ConfigError, Settings
from bot.model.vocabulary import CommandKind
from db.bots import UnknownBot
from db.engine import make_engine, session_factory

MIN_TOKEN_CHARS = 16
# how many rows a listing returns; validated by the SDK, so a bad one is refused naming it
Rows = Annotated[int, Field(ge=1, le=remote.MAX_ROWS)]
INSTRUCTIONS = (
    "Tradedesk: LLM-driven crypto trading bots. Start with `fleet` to see the bots; name a "
    "bot in the other tools when there are several. Figures are in the quote currency; "
    "mode PAPER is simulated money, LIVE is real."
)


class OperatorToken:
    """The SDK's token verifier for the one shared secret, ``MCP_TOKEN``."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="operator", scopes=[])
        return None


def http_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def build_server(settings: Settings, *, http: tuple[str, int] | None = None) -> MCPServer:
    """The server for ``settings``' database; ``http`` (host, port) adds the bearer check."""
    auth: dict[str, Any] = {}
    if http is not None:
        token = settings.mcp_token.get_secret_value() if settings.mcp_token else ""
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"invalid setting MCP_TOKEN: serving over HTTP needs a bearer "
                              f"token of at least {MIN_TOKEN_CHARS} characters")
        base = http_url(*http)
        auth = {"token_verifier": OperatorToken(token),
                "auth": AuthSettings(issuer_url=AnyHttpUrl(base),
                                     resource_server_url=AnyHttpUrl(f"{base}/mcp"))}
    server = MCPServer("tradedesk", instructions=INSTRUCTIONS, **auth)
    reading = _Reader(session_factory(make_engine(settings.database_url)),
                      settings.secret_values())
    _add_read_tools(server, reading)
    if settings.mcp_allow_commands:
        _add_command_tools(server, reading)
    return server


class _Reader:
    """Runs one tool's read on a fresh session and scrubs its answer of the secrets; a bot
    that is unknown or not named, or a record that is not the bot's, is the agent's
    mistake, said in words."""

    def __init__(self, sessions: sessionmaker[OrmSession], secrets: list[str]) -> None:
        self.sessions, self.secrets = sessions, secrets

    def __call__[T](self, read: Callable[[OrmSession], T]) -> T:
        try:
            with self.sessions() as db:
                return remote.scrubbed(read(db), self.secrets)
        except (remote.AmbiguousBot, remote.NotTheBots, UnknownBot) as exc:
            raise ToolError(str(exc)) from None
        except DBAPIError as exc:
            raise ToolError(remote.database_trouble(exc)) from None


def _add_read_tools(server: MCPServer, reading: _Reader) -> None:
    def now() -> datetime:
        return datetime.now(UTC)

    @server.tool()
    def fleet() -> list[dict[str, Any]]:
        """Every bot on the database: state (running, paused, stale, stopped, crashed), host,
        pid, heartbeat age, mode, venue, engine, symbols, the net PnL of its newest day
        (``session_date``; ``day_is_today`` false: it has no session today in its
        SESSION_TIMEZONE, and the figure is its last day's), open positions."""
        return reading(lambda db: remote.fleet(db, now()))

    @server.tool()
    def status(bot: str | None = None) -> dict[str, Any]:
        """One bot's state and its current session's figures (equity, net PnL, fees, LLM
        cost, unrealized PnL, trades, wins, losses). ``bot`` may be left out when the
        database has only one."""
        def read(db: OrmSession) -> dict[str, Any]:
            name = remote.pick_bot(db, bot)
            return {**remote.status(db, name, now()), "session": remote.pnl(db, name)}
        return reading(read)

    @server.tool()
    def positions(bot: str | None = None) -> list[dict[str, Any]]:
        """Open positions valued at the latest price, with unrealized PnL."""
        return reading(lambda db: remote.positions(db, remote.pick_bot(db, bot)))

    @server.tool()
    def plans(bot: str | None = None) -> list[dict[str, Any]]:
        """Active trade plans: entry, stop and target prices, size, filled size, status."""
        return reading(lambda db: remote.plans(db, remote.pick_bot(db, bot)))

    @server.tool()
    def trades(bot: str | None = None, limit: Rows = 20) -> list[dict[str, Any]]:
        """The newest fills (at most 100): side, size, price, fee, realized PnL, reason."""
        return reading(lambda db: remote.recent_trades(db, remote.pick_bot(db, bot), limit))

    @server.tool()
    def decisions(bot: str | None = None, limit: Rows = 20) -> list[dict[str, Any]]:
        """The newest decisions of the current session (at most 100): engine, status,
        actions, cost, latency, errors. ``trace`` shows one in full."""
        return reading(lambda db: remote.decisions(db, remote.pick_bot(db, bot), limit))

    @server.tool()
    def trace(trace_id: int, bot: str | None = None) -> dict[str, Any]:
        """One of the bot's decisions in full: prompt, raw response, decision, execution
        result, and the trades, plans and orders it caused (secrets masked). Another bot's
        or a replay's trace is refused, saying whose it is."""
        detail = reading(lambda db: remote.trace(db, remote.pick_bot(db, bot), trace_id))
        if detail is None:
            raise ToolError(f"no decision trace #{trace_id}")
        return detail

    @server.tool()
    def performance(bot: str | None = None) -> dict[str, Any]:
        """The bot's figures over its run (total return, Sharpe, Sortino, max drawdown,
        profit factor, win rate, fees and LLM cost as shares of gross PnL, buy-and-hold...),
        per symbol and per month; and per day and in total: trades, fees, gross and net PnL,
        LLM cost, wins, losses and win rate."""
        return reading(lambda db: remote.performance(db, remote.pick_bot(db, bot)))

    @server.tool()
    def round_trips(bot: str | None = None, limit: Rows = 20) -> list[dict[str, Any]]:
        """The bot's newest round trips, entry through last exit: symbol, times, size,
        average entry and exit, gross and net PnL, fees, return, exit reason, decisions."""
        return reading(lambda db: remote.round_trips(db, remote.pick_bot(db, bot), limit))


COMMAND_TOOLS = {
    CommandKind.PAUSE: "Queue PAUSE: no new entries; open plans (stops, targets) are still "
                       "enforced.",
    CommandKind.RESUME: "Queue RESUME: new entries again.",
    CommandKind.CLOSE_ALL: "Queue CLOSE-ALL: pause, cancel every order and sell every position "
                           "of the bot.",
    CommandKind.STOP: "Queue STOP: the bot process ends after its current loop.",
}


def _add_command_tools(server: MCPServer, reading: _Reader) -> None:
    """One tool per remote command (``close-all`` is ``close_all``), each queueing it for the
    named bot (or the only one) as the console's button does."""
    def queuing(kind: CommandKind) -> Callable[[str | None], dict[str, Any]]:
        def tool(bot: str | None = None) -> dict[str, Any]:
            def write(db: OrmSession) -> dict[str, Any]:
                name = remote.pick_bot(db, bot)
                return {"bot": name, "command": str(kind), "status": "pending",
                        "command_id": remote.queue(db, kind, name)}
            return reading(write)
        return tool

    for kind, description in COMMAND_TOOLS.items():
        server.add_tool(queuing(kind), name=kind.replace("-", "_"), description=description)


def serve(settings: Settings, *, http: tuple[str, int] | None) -> None:
    """``python -m bot mcp``: stdio by default, streamable HTTP at ``http``'s /mcp."""
    from bot.secrets_filter import install_log_scrubber
    from db.migrate import upgrade

    # stdout is the protocol's channel over stdio: logs go to stderr
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_scrubber(settings.secret_values())
    server = build_server(settings, http=http)  # refuses a missing MCP_TOKEN first
    upgrade(settings.database_url)
    if http is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host=http[0], port=http[1])
