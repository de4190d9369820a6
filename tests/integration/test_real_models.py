"""Real answers from real models: the embedded SmolLM2 in-process, and the `openai` backend
talking to a real OpenAI-compatible server (llama.cpp's, serving the same GGUF) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, free_port, llama_cpp_server, start_server, stop_server

pytestmark = pytest.mark.model

QUESTION = {"message": "What is the capital of France?", "params": {"temperature": 0}}


def assert_streamed_answer(stream: Any) -> str:
    assert stream.status == 200
    deltas = [d["text"] for d in stream.of("delta")]
    assert len(deltas) > 1
    complete = stream.of("complete")[0]
    assert complete["text"] == "".join(deltas)
    text: str = complete["text"]
    return text


def test_the_embedded_model_streams_a_real_answer(servers: Any) -> None:
    server: Server = servers()  # every default: llamacpp with SmolLM2-135M
    stream = server.chat(QUESTION)
    assert stream.of("start")[0]["model"] == "SmolLM2-135M-Instruct.Q4_1"
    assert "Paris" in assert_streamed_answer(stream)
    assert stream.of("metadata")[0]["usage"]["completion_tokens"] == len(stream.of("delta"))
    # Tokens are written as they are generated, not gathered into one body.
    first_delta = next(i for i, c in enumerate(stream.chunks) if b"event: delta" in c)
    assert first_delta < len(stream.chunks) - 1


def test_cancelling_the_embedded_model_stops_generation(servers: Any) -> None:
    server: Server = servers()
    long = {"message": "Write a long story about a dragon.", "params": {"max_tokens": 400}}
    first = server.chat(long, stop_after=6)
    import httpx

    httpx.post(f"{server.url}/v1/runs/{first.headers['x-run-id']}/cancel").raise_for_status()
    rest = server.stream("GET", f"/v1/runs/{first.headers['x-run-id']}/events")
    assert rest.of("error")[0]["code"] == "cancelled"
    assert len(rest.of("delta")) < 400


@pytest.fixture(scope="module")
def openai_compatible_server() -> Iterator[str]:
    with llama_cpp_server("server") as base:
        yield base


def test_the_openai_backend_streams_from_an_openai_compatible_server(
    openai_compatible_server: str, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path,
        {
            "SSECHAT_MODEL_BACKEND": "openai",
            "SSECHAT_OPENAI_BASE_URL": openai_compatible_server,
            "SSECHAT_MODEL": "smollm2",
        },
    )
    try:
        stream = server.chat(QUESTION)
        assert stream.of("start")[0]["model"] == "smollm2"
        assert "Paris" in assert_streamed_answer(stream)
        assert stream.of("complete")[0]["finish_reason"] == "stop"
        # llama.cpp's server ignores stream_options.include_usage: usage stays unknown
        # rather than being made up.
        assert stream.of("metadata")[0]["usage"] is None
    finally:
        stop_server(server)


def test_an_unreachable_openai_server_is_a_retryable_model_error(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        {
            "SSECHAT_MODEL_BACKEND": "openai",
            "SSECHAT_OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
            "SSECHAT_OPENAI_TIMEOUT": "5",
        },
    )
    try:
        stream = server.chat({"message": "hi"})
        error = stream.of("error")[0]
        assert error["code"] == "model_error"
        assert error["retryable"] is True
    finally:
        stop_server(server)


def test_a_follow_up_question_sees_the_conversation_so_far(servers: Any) -> None:
    server: Server = servers()
    greedy = {"temperature": 0}
    first = server.chat({"message": "My name is Zork.", "params": greedy})
    conversation_id = first.of("start")[0]["conversation_id"]
    follow_up = server.chat(
        {"message": "What is my name?", "conversation_id": conversation_id, "params": greedy}
    )
    fresh = server.chat({"message": "What is my name?", "params": greedy})
    assert "Zork" in follow_up.of("complete")[0]["text"]
    assert "Zork" not in fresh.of("complete")[0]["text"]
