"""What happens to answers when the server dies or is asked to stop: kill -9 then restart,
SIGTERM with a drain, and the refusal to listen beyond loopback without keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server, Stream, free_port, start_server, stop_server

WORDS = " ".join(f"w{i}" for i in range(80))


def conversation(server: Server, conversation_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.url}/v1/conversations/{conversation_id}").json()
    return answer


def answer_of(server: Server, conversation_id: str) -> dict[str, Any]:
    messages = conversation(server, conversation_id)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    answer: dict[str, Any] = messages[1]
    return answer


def test_after_kill_9_and_a_restart_the_cut_answer_is_interrupted_with_its_text(
    tmp_path: Path,
) -> None:
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_DATA_DIR": str(tmp_path / "data")}
    server = start_server(tmp_path, env)
    try:
        # ~25 words at 0.1 s: more than two seconds of answer, so at least one save happened.
        body = {"message": "hi", "params": {"text": WORDS, "delay": 0.1}}
        cut = server.chat(body, stop_after=28)
        conversation_id = cut.of("start")[0]["conversation_id"]
        server.proc.kill()  # SIGKILL: no finally, no drain
        server.proc.wait(10)
    finally:
        stop_server(server)
    restarted = start_server(tmp_path, env)
    try:
        answer = answer_of(restarted, conversation_id)
        assert answer["status"] == "interrupted"
        assert answer["content"]  # what was saved before the crash is kept
        assert WORDS.startswith(answer["content"])
        # no more than about a second of text lost: 10 tokens at 0.1 s, plus scheduling slack
        streamed = "".join(d["text"] for d in cut.of("delta"))
        assert len(streamed.split()) - len(answer["content"].split()) <= 15
    finally:
        stop_server(restarted)


def stream_in_background(
    server: Server, body: dict[str, Any]
) -> tuple[threading.Thread, list[Stream]]:
    result: list[Stream] = []
    thread = threading.Thread(target=lambda: result.append(server.chat(body, timeout=30)))
    thread.start()
    return thread, result


def test_sigterm_lets_a_run_finish_within_the_drain_timeout(tmp_path: Path) -> None:
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_DRAIN_TIMEOUT": "10"}
    server = start_server(tmp_path, env)
    text = " ".join(f"w{i}" for i in range(15))
    thread, result = stream_in_background(
        server, {"message": "hi", "params": {"text": text, "delay": 0.1}}
    )
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    # uvicorn re-raises the SIGTERM it caught once shut down cleanly: a normal stop
    assert server.proc.wait(30) in (0, -signal.SIGTERM)
    (stream,) = result
    assert stream.types[-1] == "complete"
    assert stream.of("complete")[0]["text"] == text


def test_sigterm_past_the_drain_timeout_ends_streams_with_a_retryable_shutdown(
    tmp_path: Path,
) -> None:
    env = {
        "SSECHAT_MODEL_BACKEND": "scripted",
        "SSECHAT_DRAIN_TIMEOUT": "1.5",
        "SSECHAT_DATA_DIR": str(tmp_path / "data"),
    }
    server = start_server(tmp_path, env)
    thread, result = stream_in_background(
        server, {"message": "hi", "params": {"text": WORDS, "delay": 0.1}}
    )
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # draining now: no new runs
    refused = httpx.post(f"{server.url}/v1/chat/stream", json={"message": "hi"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "shutting_down"
    thread.join(30)
    # uvicorn re-raises the SIGTERM it caught once shut down cleanly: a normal stop
    assert server.proc.wait(30) in (0, -signal.SIGTERM)
    (stream,) = result
    assert stream.types[-1] == "error"
    error = stream.of("error")[0]
    assert error["code"] == "shutdown"
    assert error["retryable"] is True
    streamed = "".join(d["text"] for d in stream.of("delta"))
    conversation_id = stream.of("start")[0]["conversation_id"]
    restarted = start_server(tmp_path, env)
    try:
        answer = answer_of(restarted, conversation_id)
        assert answer["status"] == "interrupted"
        assert answer["content"] == streamed
    finally:
        stop_server(restarted)


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SSECHAT_DATA_DIR": str(tmp_path), "SSECHAT_MODEL_BACKEND": "scripted"}
    return subprocess.run(
        [sys.executable, "-m", "ssechat", "serve", "--port", str(free_port()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_keys_it_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    result = serve(tmp_path, "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no API keys" in result.stderr
    assert "Traceback" not in result.stderr
