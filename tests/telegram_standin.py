"""A local stand-in of the Telegram Bot API: answers python-telegram-bot's requests with
JSON shaped as the real API's (``tests/fixtures/telegram``), hands out the updates a test
queues, and records every message the bot sends.

It speaks what the bot uses: getMe, deleteWebhook, getUpdates (long polling, held until an
update arrives or the poll's timeout), sendMessage, answerCallbackQuery and
editMessageText. A request under another token is refused as the real API does (401).
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
MAX_HOLD_SECONDS = 1.0  # a long poll is held at most this long, so shutdown stays quick


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class BotApiStandIn:
    def __init__(self, token: str, port: int = 0) -> None:
        """``port`` 0 takes any free port; a test that starts the bot first passes one."""
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []  # sendMessage / editMessageText parameters
        self.calls: list[str] = []
        self._next_update = 815_000_001
        self._next_message = 100
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> BotApiStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what a test does
    def say(self, chat_id: int, text: str) -> None:
        """Queue a message from a user in the private chat ``chat_id``."""
        update = _fixture("message_update")
        message = update["message"]
        message["message_id"] = self._message_id()
        message["chat"]["id"] = message["from"]["id"] = chat_id
        message["date"] = int(time.time())
        message["text"] = text
        command = text.split()[0]
        message["entities"] = ([{"offset": 0, "length": len(command), "type": "bot_command"}]
                               if command.startswith("/") else [])
        self._queue(update)

    def press(self, chat_id: int, data: str) -> None:
        """Queue a press of an inline button carrying ``data`` in chat ``chat_id``."""
        update = _fixture("callback_query_update")
        query = update["callback_query"]
        query["id"] = str(self._next_update)
        query["from"]["id"] = query["message"]["chat"]["id"] = chat_id
        query["data"] = data
        self._queue(update)

    def replies_to(self, chat_id: int) -> list[dict[str, Any]]:
        with self._changed:
            return [m for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def buttons_of(self, reply: dict[str, Any]) -> dict[str, str]:
        """label → callback data of the inline keyboard a reply carried."""
        markup = json.loads(reply.get("reply_markup") or "{}")
        return {b["text"]: b["callback_data"]
                for row in markup.get("inline_keyboard", []) for b in row}

    def _queue(self, update: dict[str, Any]) -> None:
        with self._changed:
            update["update_id"] = self._next_update
            self._next_update += 1
            self.updates.append(update)
            self._changed.notify_all()

    def _message_id(self) -> int:
        self._next_message += 1
        return self._next_message

    # --- the API
    def _answer(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        self.calls.append(method)
        if method == "getMe":
            return _fixture("getMe")
        if method == "getUpdates":
            return {"ok": True, "result": self._updates(params)}
        if method in ("sendMessage", "editMessageText"):
            sent = _fixture("sendMessage")
            message = sent["result"]
            message["message_id"] = self._message_id()
            message["chat"]["id"] = int(params["chat_id"]) if "chat_id" in params else 0
            message["text"] = params.get("text", "")
            with self._changed:
                self.sent.append({"method": method, **params})
                self._changed.notify_all()
            return sent
        if method in ("deleteWebhook", "answerCallbackQuery", "setMyCommands"):
            return {"ok": True, "result": True}
        return {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0))
        hold = min(float(params.get("timeout", 0)), MAX_HOLD_SECONDS)
        deadline = time.monotonic() + hold
        with self._changed:
            while True:
                ready = [u for u in self.updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if ready or left <= 0:
                    return copy.deepcopy(ready)
                self._changed.wait(left)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server protocol)
                _, _, rest = self.path.partition("/bot")
                token, _, method = rest.partition("/")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                params = {k: v[0] for k, v in parse_qs(body).items()}
                if token != standin.token:
                    status, answer = 401, {"ok": False, "error_code": 401,
                                           "description": "Unauthorized"}
                else:
                    answer = standin._answer(method, params)
                    status = 200 if answer["ok"] else answer["error_code"]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)  # a poll cancelled at shutdown hangs up first

            def log_message(self, *_: object) -> None:
                pass

        return Handler
