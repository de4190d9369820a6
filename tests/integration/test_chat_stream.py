"""`POST /v1/chat/stream` against a real server on loopback, with the scripted model."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ssechat.sse import Decoder
from tests.conftest import Server, start_server, stop_server

TEXT = "Streams are runs, not connections, and every client gets each event once."


def test_a_chat_streams_start_status_deltas_metadata_and_complete(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "params": {"text": TEXT}})
    assert stream.status == 200
    types = [t for t in stream.types if t != "message"]
    n = len(stream.of("delta"))
    assert types == ["start", "status", *["delta"] * n, "metadata", "complete"]
    assert n > 5
    assert "".join(d["text"] for d in stream.of("delta")) == TEXT
    assert stream.of("complete")[0]["text"] == TEXT


def test_ids_are_the_run_sequence_1_2_3_without_gaps(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "params": {"text": TEXT}})
    ids = [int(m.id) for m in stream.messages if m.event != "message"]
    assert ids == list(range(1, len(ids) + 1))


def test_stream_headers_keep_proxies_from_buffering(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi"})
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in stream.headers
    assert stream.headers["x-run-id"] == stream.of("start")[0]["run_id"]


def test_the_first_message_sets_the_retry_interval(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi"})
    assert stream.chunks[0].startswith(b"retry: 3000\n")


def test_start_names_run_conversation_message_pipeline_model_and_time(scripted: Server) -> None:
    start = scripted.chat({"message": "hi", "conversation_id": "conv-7"}).of("start")[0]
    assert start["conversation_id"] == "conv-7"
    assert start["pipeline"] == "chat"
    assert start["model"] == "scripted"
    assert start["run_id"].startswith("run_")
    assert start["message_id"].startswith("msg_")
    assert start["created_at"].endswith("+00:00")


def test_metadata_reports_usage_and_timings(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "params": {"text": TEXT}})
    meta = stream.of("metadata")[0]
    assert meta["usage"]["completion_tokens"] == len(stream.of("delta"))
    assert 0 <= meta["timings"]["ttft_ms"] <= meta["timings"]["total_ms"]
    assert stream.of("complete")[0]["usage"] == meta["usage"]


def test_idle_streams_get_keepalive_comments(scripted: Server) -> None:
    # 0.6 s between tokens and a 0.2 s keepalive: pings must fill the silences.
    stream = scripted.chat({"message": "hi", "params": {"text": "slow answer", "delay": 0.6}})
    body = b"".join(stream.chunks)
    assert body.count(b": ping\n\n") >= 2
    assert stream.of("complete")[0]["text"] == "slow answer"


@pytest.fixture(scope="module")
def h11(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app under uvicorn's h11 protocol: streams take the ASGI path of `transport.py`
    (one `send` per batch), not the direct writes of the httptools protocol."""
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_KEEPALIVE_INTERVAL": "0.2"}
    command = ("-m", "uvicorn", "--factory", "ssechat.app:create_app", "--http", "h11")
    server = start_server(tmp_path_factory.mktemp("h11"), env, command=command)
    yield server
    stop_server(server)


def test_under_another_protocol_streams_carry_the_same_events_and_pings(
    scripted: Server, h11: Server
) -> None:
    ask = {"message": "hi", "params": {"text": "slow answer", "delay": 0.6}}
    direct, asgi = scripted.chat(ask), h11.chat(ask)
    assert [(m.event, m.id) for m in asgi.messages] == [(m.event, m.id) for m in direct.messages]
    assert asgi.of("complete")[0]["text"] == "slow answer"
    assert b"".join(asgi.chunks).count(b": ping\n\n") >= 2


def http_chunks(server: Server, path: str, body: dict[str, Any]) -> list[bytes]:
    """The body of a chunked response, as the HTTP/1.1 chunks it came in: each is one write
    of the server's (a client library would merge or split them as its reads fall)."""
    host, port = server.url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (path.encode(), host.encode(), len(payload), payload)
        )
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    chunks = []
    while True:
        size, _, rest = rest.partition(b"\r\n")
        if int(size, 16) == 0:
            return chunks
        chunks.append(rest[: int(size, 16)])
        rest = rest[int(size, 16) + 2 :]


def test_a_fast_models_deltas_share_writes_and_none_is_lost(scripted: Server) -> None:
    # 300 tokens, each after a turn of the event loop (as a model's network read gives way):
    # they come within a few ms, and a write per token would cost more than the token.
    text = " ".join(f"w{i}" for i in range(300))
    ask = {"message": "hi", "params": {"text": text, "stamp": True}}
    chunks = http_chunks(scripted, "/v1/chat/stream", ask)
    messages = Decoder().feed(b"".join(chunks))
    assert sum(m.event == "delta" for m in messages) == 300
    assert [int(m.id or 0) for m in messages] == list(range(1, len(messages) + 1))
    assert sum(b"event: delta" in chunk for chunk in chunks) < 300 / 4


def test_deltas_arrive_while_the_answer_is_being_generated(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "params": {"text": "one two three", "delay": 0.2}})
    first_delta = next(i for i, c in enumerate(stream.chunks) if b"event: delta" in c)
    complete = next(i for i, c in enumerate(stream.chunks) if b"event: complete" in c)
    assert first_delta < complete  # not one buffered body at the end


def test_a_model_failure_mid_stream_ends_with_an_error_event(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "params": {"text": TEXT, "fail_after": 3}})
    assert stream.status == 200
    assert [m.event for m in stream.messages][-1] == "error"
    error = stream.of("error")[0]
    assert error["code"] == "model_error"
    assert error["retryable"] is True
    assert len(stream.of("delta")) == 3
    assert "complete" not in stream.types


BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "invalid JSON",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
        "invalid_json",
    ),
    ("missing message", {"json": {"pipeline": "chat"}}, 400, "invalid_request"),
    ("empty message", {"json": {"message": "   "}}, 400, "empty_message"),
    ("oversized message", {"json": {"message": "x" * 40_000}}, 413, "message_too_long"),
    (
        "oversized body",
        {"json": {"message": "hi", "params": {"text": "y" * 1_100_000}}},
        413,
        "payload_too_large",
    ),
    ("unknown pipeline", {"json": {"message": "hi", "pipeline": "nope"}}, 400, "unknown_pipeline"),
    ("unknown model", {"json": {"message": "hi", "model": "gpt-9"}}, 400, "unknown_model"),
    (
        "wrong content type",
        {
            "content": b"message=hi",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        415,
        "unsupported_media_type",
    ),
    ("unknown field", {"json": {"message": "hi", "mesage": "typo"}}, 400, "invalid_request"),
    (
        "bad params",
        {"json": {"message": "hi", "params": {"max_tokens": -1}}},
        400,
        "invalid_params",
    ),
    (
        "unknown param",
        {"json": {"message": "hi", "params": {"temprature": 1}}},
        400,
        "invalid_params",
    ),
    ("message not a string", {"json": {"message": 42}}, 400, "invalid_request"),
]


@pytest.mark.parametrize(
    ("case", "request_kwargs", "status", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_input_gets_a_4xx_json_error_before_any_stream(
    scripted: Server, case: str, request_kwargs: dict[str, Any], status: int, code: str
) -> None:
    stream = scripted.stream("POST", "/v1/chat/stream", **request_kwargs)
    assert stream.status == status
    assert stream.headers["content-type"] == "application/json"
    error = stream.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in error["message"]


def test_an_unknown_format_is_refused_before_a_run_starts(scripted: Server) -> None:
    stream = scripted.stream("POST", "/v1/chat/stream?format=klingon", json={"message": "hi"})
    assert stream.status == 400
    assert stream.json()["error"]["code"] == "unknown_format"


def test_unknown_routes_answer_json_404(scripted: Server) -> None:
    stream = scripted.stream("GET", "/v1/nope")
    assert stream.status == 404
    assert stream.json()["error"]["code"] == "not_found"


def test_health_names_the_model_and_the_backends(scripted: Server) -> None:
    import httpx

    body = httpx.get(scripted.url + "/health").json()
    assert body == {
        "status": "ok",
        "model": "scripted",
        "backend": "scripted",
        "event_log": "memory",
        "store": "sqlite",
    }


def test_an_over_long_conversation_id_is_refused_before_any_stream(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "conversation_id": "c" * 201})
    assert stream.status == 400
    assert stream.json()["error"]["code"] == "invalid_request"


def test_metrics_count_runs_events_errors_and_time_to_first_token(servers: Any) -> None:
    import httpx

    server = servers(model_backend="scripted", keepalive_interval="0.3")  # a fresh registry
    server.chat({"message": "hi", "params": {"text": "one two three"}})
    server.chat({"message": "hi", "params": {"text": "one two three", "fail_after": 1}})
    body = httpx.get(server.url + "/metrics").text
    assert 'ssechat_runs_total{outcome="complete",pipeline="chat"} 1.0' in body
    assert 'ssechat_runs_total{outcome="error",pipeline="chat"} 1.0' in body
    assert 'ssechat_errors_total{code="model_error"} 1.0' in body
    assert "ssechat_time_to_first_token_seconds_count 2.0" in body
    # start, status, 3 deltas, metadata, complete + start, status, 1 delta, error
    assert "ssechat_events_sent_total 11.0" in body
    assert "ssechat_active_runs 0.0" in body
    assert "ssechat_active_subscribers 0.0" in body


def test_format_openai_on_the_canonical_route_sends_no_retry_field(scripted: Server) -> None:
    # openai-python's decoder would take a lone `retry:` block for a (broken) message
    stream = scripted.stream("POST", "/v1/chat/stream?format=openai", json={"message": "hi"})
    body = b"".join(stream.chunks)
    assert not body.startswith(b"retry:")
    assert b"chat.completion.chunk" in body
    assert body.endswith(b"data: [DONE]\n\n")


def test_the_openapi_page_describes_every_route(scripted: Server) -> None:
    import httpx

    schema = httpx.get(scripted.url + "/openapi.json").json()
    for path in ("/v1/chat/stream", "/v1/runs/{run_id}/events", "/v1/conversations"):
        assert path in schema["paths"]
    # The resume route reads these by hand; its page still names them.
    resume = schema["paths"]["/v1/runs/{run_id}/events"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in resume} == {
        ("run_id", "path"),
        ("Last-Event-ID", "header"),
        ("last_event_id", "query"),
        ("format", "query"),
    }
    assert httpx.get(scripted.url + "/docs").status_code == 200
