"""Real servers for the tests: `ssechat serve` in a subprocess on a free loopback port.

httpx's ASGITransport buffers whole bodies, so anything about streaming runs against a real
uvicorn. Servers are started once per configuration and shared by the session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssechat.models.llamacpp import default_model_path
from ssechat.sse import Decoder, ServerSentEvent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server not up after {timeout}s:\n{log.read_text()}")


@dataclass
class Stream:
    """A finished (or cut) SSE response: status, headers, decoded messages, raw chunks."""

    status: int
    headers: httpx.Headers
    messages: list[ServerSentEvent] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    body: bytes = b""

    def of(self, event: str) -> list[dict[str, Any]]:
        import orjson

        return [orjson.loads(m.data) for m in self.messages if m.event == event]

    @property
    def types(self) -> list[str]:
        return [m.event or "" for m in self.messages]

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stream(
        self,
        method: str,
        path: str,
        *,
        stop_after: int | None = None,
        timeout: float = 60,
        **kwargs: Any,
    ) -> Stream:
        """Send a request and decode its SSE body; with `stop_after`, hang up once that many
        messages have arrived (the connection is closed, as a browser tab would)."""
        with (
            httpx.Client(base_url=self.url, timeout=timeout) as client,
            client.stream(method, path, **kwargs) as response,
        ):
            result = Stream(response.status_code, response.headers)
            if response.status_code != 200:
                result.body = response.read()
                return result
            decoder = Decoder()
            for chunk in response.iter_raw():
                result.chunks.append(chunk)
                result.messages += decoder.feed(chunk)
                if stop_after is not None and len(result.messages) >= stop_after:
                    break
            return result

    def chat(self, body: Any = None, **kwargs: Any) -> Stream:
        return self.stream("POST", "/v1/chat/stream", json=body, **kwargs)


def assert_unavailable(server: Server, backend: str, code: str) -> None:
    """While `backend` is down: `/ready` is 503 naming it, and a new chat is a 503 `code`."""
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 503
    assert ready.json()[backend].startswith("unavailable")
    refused = server.chat({"message": "hi"})
    assert refused.status == 503
    assert refused.json()["error"]["code"] == code


def start_server(
    tmp: Path,
    env: dict[str, str],
    *,
    args: tuple[str, ...] = (),
    command: tuple[str, ...] = ("-m", "ssechat", "serve"),
    cwd: Path | None = None,
    ready: str = "/health",
) -> Server:
    """Start `python <command> --port N <args>` (`ssechat serve` unless told otherwise) and
    wait until `ready` answers 200."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    full_env = {**os.environ, "SSECHAT_DATA_DIR": str(tmp / f"data-{port}"), **env}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, *command, "--port", str(port), *args],
            env=full_env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    wait_until_up(server.url + ready, proc, log)
    return server


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@contextmanager
def llama_cpp_server(name: str, *args: str) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`, with `args`) serving
    the embedded SmolLM2 GGUF on a free loopback port: its /v1 base URL while it runs. Its log
    is kept in /tmp/llama-{name}-{port}.log, to read when it fails to come up."""
    port = free_port()
    log = Path(f"/tmp/llama-{name}-{port}.log")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
             "--host", "127.0.0.1", "--port", str(port), *args, "--verbose", "false"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(base + "/models", proc, log, timeout=120)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`servers(**env)`: a running server for that configuration, shared by the session."""
    started: dict[tuple[tuple[str, str], ...], Server] = {}
    tmp = tmp_path_factory.mktemp("servers")

    def get(**env: str) -> Server:
        key = tuple(sorted(env.items()))
        if key not in started:
            started[key] = start_server(tmp, {f"SSECHAT_{k.upper()}": v for k, v in env.items()})
        return started[key]

    yield get
    for server in started.values():
        stop_server(server)


@pytest.fixture(scope="session")
def scripted(servers: Any) -> Server:
    """A server on the scripted model with a short keepalive, for plumbing tests."""
    server: Server = servers(model_backend="scripted", keepalive_interval="0.2")
    return server
