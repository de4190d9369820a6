"""Every compatible route ends a failed or stopped answer in its own dialect's terms, on a real
server: a model failure after three words (the `failing` server) and a stop through
`POST /v1/runs/{id}/cancel` while the answer streams; and the seeds' own clients see the end."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ssechat.sse import Decoder, ServerSentEvent
from tests.conftest import Server
from tests.integration.conftest import WORDS, node, seed_000_requests_loop

FAILURE = "scripted failure after 3 tokens"
ASK = [{"role": "user", "content": "hi"}]
UI_ASK = [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]

# dialect, method, path, body
ROUTES = [
    ("vanna", "POST", "/api/vanna/v2/chat_sse", {"message": "hi"}),
    ("keyed", "POST", "/api/chat/stream", {"message": "hi"}),
    ("message", "GET", "/api/chat/stream?message=hi", None),
    ("message", "POST", "/api/chat/message", {"message": "hi"}),
    ("typed", "POST", "/chat/7/stream", {"question": "hi"}),
    ("delta", "POST", "/api/v1/chat/stream", {"text": "hi"}),
    ("openai", "POST", "/v1/chat/completions", {"model": "x", "messages": ASK, "stream": True}),
    ("ai-sdk", "POST", "/api/chat", {"id": "endings", "messages": UI_ASK}),
]
IDS = [f"{method} {path.split('?')[0]}" for _, method, path, _ in ROUTES]


def ending(dialect: str, messages: list[ServerSentEvent]) -> str:
    """How the stream ended, read as that dialect's clients read it: the error code, or for
    the AI SDK the type of its last part."""
    payloads = [m.data for m in messages]
    if dialect in ("keyed", "openai", "ai-sdk"):
        assert payloads[-1] == "[DONE]"
        payloads.pop()
    last: dict[str, Any] = json.loads(payloads[-1])
    if dialect in ("vanna", "message"):
        assert messages[-1].event == "error"
        return str(last["code"])
    if dialect == "keyed":
        assert "error" in last
        return str(last["code"])
    if dialect == "typed":
        assert last["type"] == "error"
        return str(last["code"])
    if dialect == "delta":
        assert last["done"] is True
        return str(last["error"]["code"])
    if dialect == "openai":
        return str(last["error"]["code"])
    return str(last["type"])


@pytest.mark.parametrize(("dialect", "method", "path", "body"), ROUTES, ids=IDS)
def test_a_model_failure_ends_the_stream_with_the_dialects_error(
    failing: Server, dialect: str, method: str, path: str, body: Any
) -> None:
    stream = failing.stream(method, path, json=body)
    assert stream.status == 200
    assert ending(dialect, stream.messages) == ("error" if dialect == "ai-sdk" else "model_error")
    assert FAILURE in stream.messages[-2 if dialect in ("keyed", "openai", "ai-sdk") else -1].data


def stream_and_cancel(server: Server, method: str, path: str, body: Any) -> list[ServerSentEvent]:
    """Stream a route and stop its run once the first word of the answer has arrived."""
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream(method, path, json=body) as response,
    ):
        assert response.status_code == 200
        decoder, messages, cancelled = Decoder(), list[ServerSentEvent](), False
        for chunk in response.iter_raw():
            messages += decoder.feed(chunk)
            if not cancelled and any(WORDS[0] in m.data for m in messages):
                run_id = response.headers["x-run-id"]
                assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
                cancelled = True
        return messages


@pytest.mark.parametrize(("dialect", "method", "path", "body"), ROUTES, ids=IDS)
def test_a_stopped_run_ends_the_stream_the_way_the_dialect_says_cancelled(
    compat: Server, dialect: str, method: str, path: str, body: Any
) -> None:
    messages = stream_and_cancel(compat, method, path, body)
    assert ending(dialect, messages) == ("abort" if dialect == "ai-sdk" else "cancelled")
    assert len([m for m in messages if WORDS[-1] in m.data]) == 0  # it did stop early


def test_seed_000_requests_loop_prints_what_came_before_a_failure_and_ends(
    failing: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_000_requests_loop(failing.url)
    assert capsys.readouterr().out == " ".join(WORDS[:3])


def test_seed_001_client_reports_the_error_through_its_callback(failing: Server) -> None:
    seen = node("seeds/seed001_fetch.mjs", failing.url, "/api/chat/stream", "hi")
    assert seen["errors"] == [FAILURE]
    assert "".join(seen["tokens"]) == " ".join(WORDS[:3])


def test_seed_002_eventsource_stops_after_an_error_instead_of_asking_again(
    failing: Server,
) -> None:
    # The seed's service ignores a server-sent `error` event; its EventSource reconnects on its
    # own (retry 200 ms here), carrying the last id: the server, seeing the run ended and seen,
    # answers 204, which closes the source. Only then does the seed's handler hear of it.
    seen = node("seeds/seed002_eventsource.mjs", failing.url, "eventsource", "hi")
    assert seen["errors"] == ["Connection closed"]
    texts = [m["content"] for m in seen["messages"] if m["type"] == "text"]
    assert "".join(texts) == " ".join(WORDS[:3])
    assert (seen["connects"], seen["completes"]) == (1, 0)
