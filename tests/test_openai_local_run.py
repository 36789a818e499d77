"""A live paper run on the OpenAI-compatible provider, pointed at a local stand-in server.

The stand-in is a real HTTP server on 127.0.0.1 answering ``/v1/chat/completions`` with an
answer recorded from Ollama's compatible endpoint; the engine is the one the settings build
(the real ``openai`` SDK over the network stack), the loop, the paper venue and SQLite are
real. The run trades, its trace names the provider and what it asked, costs nothing (a
local model) and its answer is recorded; the same step served from that recording asks the
server nothing and decides the same.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.engine.factory import build_engine
from bot.engine.prompt import PROMPT_VERSION
from bot.engine.recording import Recording
from bot.runtime import Runtime
from db.migrate import upgrade
from db.models import LLMTrace, Order
from tests.conftest import candle_file
from tests.loop_harness import make_runtime, step
from tests.recorded_http import fixture
from tests.test_console_apptest import _app, _console_env, _open  # noqa: F401

LLM = {"LLM_PROVIDER": "openai", "LLM_MODEL": "qwen2.5:7b", "LLM_MIN_INTERVAL_SECONDS": "0"}


class StandIn:
    """An OpenAI-compatible server that answers every chat completion with one recording."""

    def __init__(self, body: bytes) -> None:
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server hook's name)
                length = int(self.headers.get("content-length", 0))
                stand_in.requests.append({"path": self.path,
                                          "body": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn(fixture("openai", "ollama_decision.json"))
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join()


def bot(url: str, base_url: str, recording: Path, recorded: Recording | None = None) -> Runtime:
    settings = load_settings(**LLM, LLM_BASE_URL=base_url, LLM_RECORDING=str(recording),
                             SYMBOLS="BTC/USDT", TIMEFRAMES="5m,1h")
    engine = build_engine(settings, recorded)
    upgrade(url)
    return make_runtime(url, [candle_file("BTC_USDT-5m.csv")], engine, **LLM,
                        LLM_BASE_URL=base_url)


@pytest.mark.slow
def test_live_paper_run_on_a_local_server_trades_traces_and_records(
        tmp_path, stand_in: StandIn) -> None:
    recording = tmp_path / "answers.jsonl"
    rt = bot(f"sqlite:///{tmp_path / 'live.db'}", stand_in.url, recording)
    step(rt)
    (request,) = stand_in.requests
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "qwen2.5:7b"
    with rt.db() as db:
        (trace,) = db.scalars(select(LLMTrace)).all()
        (entry,) = db.scalars(select(Order).where(Order.purpose == "entry")).all()
    assert entry.trace_id == trace.id and entry.side == "BUY"
    assert (trace.engine, trace.provider, trace.model, trace.model_version) == (
        "openai", "openai", "qwen2.5:7b", "qwen2.5:7b")
    assert trace.temperature == 0.2 and trace.prompt_version == PROMPT_VERSION
    assert trace.cost == 0 and trace.price_source == "local" and trace.tokens_in == 2187
    (line,) = recording.read_text().splitlines()
    assert json.loads(line)["key"] == trace.request_hash

    # The same step again, from the recording: the server is not asked, the decision is the
    # same and so is what it traded.
    again = bot(f"sqlite:///{tmp_path / 'again.db'}", "http://127.0.0.1:9/v1", recording,
                Recording(recording))
    step(again)
    assert len(stand_in.requests) == 1
    with again.db() as db:
        (replayed,) = db.scalars(select(LLMTrace)).all()
        (entry_again,) = db.scalars(select(Order).where(Order.purpose == "entry")).all()
    assert replayed.request_hash == trace.request_hash
    assert replayed.decision_json == trace.decision_json
    assert (entry_again.amount, entry_again.side) == (entry.amount, entry.side)


@pytest.mark.slow
def test_decisions_page_names_the_provider_and_labels_the_model_local(
        sqlite_url, tmp_path, stand_in: StandIn, monkeypatch) -> None:
    step(bot(sqlite_url, stand_in.url, tmp_path / "answers.jsonl"))
    at = _open(_app(sqlite_url, monkeypatch), "decisions")
    (line,) = [t.value for t in at.text if t.value.startswith("provider ")]
    assert line.startswith("provider openai · model version qwen2.5:7b · temperature 0.2 · "
                           f"prompt {PROMPT_VERSION} · request ")
    assert line.endswith("· price local (free)")
