"""Several `ssechat serve` replicas sharing a real Redis (event logs) and a real PostgreSQL
(store), as behind a load balancer: any replica serves any run."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    Server,
    Stream,
    assert_unavailable,
    free_port,
    start_server,
    stop_server,
    wait_until_up,
)
from tests.postgres import postgres_bin, postgres_cluster
from tests.redis import RedisServer, redis_server

WORDS = [f"word{i}" for i in range(40)]
TEXT = " ".join(WORDS)
SLOW = {"text": TEXT, "delay": 0.1}  # 40 tokens: about 4 s
HEARTBEAT_TIMEOUT = 1.5
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs Debian's postgresql)")
    with postgres_cluster() as cluster:
        yield cluster.url


@pytest.fixture(scope="module")
def replica(
    redis: RedisServer, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Server]]:
    """`replica()`: one more `ssechat serve` process on the shared Redis and PostgreSQL."""
    tmp = tmp_path_factory.mktemp("replicas")
    env = {
        "SSECHAT_MODEL_BACKEND": "scripted",
        "SSECHAT_DATABASE_URL": database_url,
        "SSECHAT_REDIS_URL": redis.url,
        "SSECHAT_HEARTBEAT_INTERVAL": "0.2",
        "SSECHAT_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "SSECHAT_KEEPALIVE_INTERVAL": "0.5",
    }
    started: list[Server] = []

    def start() -> Server:
        started.append(start_server(tmp, env))
        return started[-1]

    yield start
    for server in started:
        if server.proc.poll() is None:
            stop_server(server)


@pytest.fixture(scope="module")
def b(replica: Callable[[], Server]) -> Server:
    return replica()


@pytest.fixture
def a(replica: Callable[[], Server]) -> Server:
    """A replica of its own for each test: some tests kill it."""
    return replica()


class Background:
    """A stream read in a thread, so that a test can act while it flows."""

    def __init__(self, read: Callable[[], Stream]) -> None:
        self.result: Stream | None = None
        self._thread = threading.Thread(target=self._run, args=(read,), daemon=True)
        self._thread.start()

    def _run(self, read: Callable[[], Stream]) -> None:
        self.result = read()

    def join(self, timeout: float) -> Stream:
        self._thread.join(timeout)
        assert self.result is not None, f"the stream did not end within {timeout} s"
        return self.result


def follow(server: Server, run_id: str, after: str | None = None) -> Stream:
    """The run's events through `server`, after `Last-Event-ID: after` if given."""
    headers = {"Last-Event-ID": after} if after is not None else {}
    return server.stream("GET", f"/v1/runs/{run_id}/events", headers=headers)


def ids(stream: Stream) -> list[int]:
    return [int(m.id) for m in stream.messages if m.id]


def deltas(stream: Stream) -> str:
    return "".join(d["text"] for d in stream.of("delta"))


def answer(server: Server, conversation_id: str) -> dict[str, Any]:
    found = httpx.get(f"{server.url}/v1/conversations/{conversation_id}").json()
    message: dict[str, Any] = found["messages"][-1]
    assert message["role"] == "assistant"
    return message


def assert_ends_retryably(stream: Stream, code: str) -> None:
    assert stream.types[-1] == "error"
    error = stream.of("error")[0]
    assert error["code"] == code
    assert error["retryable"] is True


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.05)


def test_a_run_started_on_one_replica_is_followed_and_resumed_through_another(
    a: Server, b: Server
) -> None:
    first = a.chat({"message": "hi", "params": SLOW}, stop_after=6)  # the tab drops
    run_id = first.headers["x-run-id"]
    follower = Background(lambda: follow(b, run_id))
    rest = follow(b, run_id, first.messages[-1].id)
    everything = follower.join(30)

    resumed = ids(first) + ids(rest)
    assert resumed == list(range(1, len(resumed) + 1))  # no lost, no repeated event
    assert ids(everything) == resumed
    assert rest.types[-1] == "complete"
    assert deltas(first) + deltas(rest) == TEXT == rest.of("complete")[0]["text"]
    assert answer(b, first.of("start")[0]["conversation_id"])["status"] == "complete"


def test_a_run_is_cancelled_through_another_replica(a: Server, b: Server) -> None:
    owner = a.chat({"message": "hi", "params": SLOW}, stop_after=3)
    run_id = owner.headers["x-run-id"]
    follower = Background(lambda: follow(b, run_id, owner.messages[-1].id))
    cancelled = httpx.post(f"{b.url}/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelling"

    rest = follower.join(10)  # the run had 4 s to go: it stopped early
    assert rest.types[-1] == "error"
    assert rest.of("error")[0]["code"] == "cancelled"
    assert ids(owner) + ids(rest) == list(range(1, len(ids(owner) + ids(rest)) + 1))
    conversation = owner.of("start")[0]["conversation_id"]
    wait_for(lambda: answer(b, conversation)["status"] == "cancelled", 5, "stored as cancelled")
    assert len(deltas(owner) + deltas(rest)) < len(TEXT)
    again = httpx.post(f"{b.url}/v1/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_finished"


def test_killing_the_replica_that_runs_an_answer_interrupts_it_for_followers_elsewhere(
    a: Server, b: Server
) -> None:
    owner = a.chat({"message": "hi", "params": SLOW}, stop_after=4)
    run_id = owner.headers["x-run-id"]
    conversation = owner.of("start")[0]["conversation_id"]
    follower = Background(lambda: follow(b, run_id))
    wait_for(lambda: "word5" in answer(b, conversation)["content"], 10, "text saved while it runs")

    a.proc.kill()  # no shutdown, no `finally`: only the missing heartbeat tells
    killed = time.monotonic()
    seen = follower.join(HEARTBEAT_TIMEOUT + 10)

    assert time.monotonic() - killed < HEARTBEAT_TIMEOUT + 5
    assert_ends_retryably(seen, "interrupted")
    assert ids(seen) == list(range(1, len(ids(seen)) + 1))
    # The replica that ended the run saves it just after (ending it is what elects it).
    wait_for(lambda: answer(b, conversation)["status"] == "interrupted", 5, "saved")
    stored = answer(b, conversation)
    assert stored["content"] == deltas(seen)  # what was generated is kept, all of it
    assert TEXT.startswith(stored["content"])
    assert stored["content"]


def test_without_redis_replicas_answer_503_end_streams_retryably_and_recover(
    redis: RedisServer, b: Server
) -> None:
    running = b.chat({"message": "hi", "params": SLOW}, stop_after=3)
    run_id = running.headers["x-run-id"]
    conversation = running.of("start")[0]["conversation_id"]
    follower = Background(lambda: follow(b, run_id, running.messages[-1].id))
    time.sleep(0.5)
    redis.stop()
    try:
        assert_ends_retryably(follower.join(15), "event_log_unavailable")

        assert_unavailable(b, "event_log", "event_log_unavailable")
        # What the run had generated is saved, with how it ended.
        wait_for(lambda: answer(b, conversation)["status"] == "interrupted", 10, "saved")
        assert TEXT.startswith(answer(b, conversation)["content"])
    finally:
        redis.start()
    wait_for(lambda: httpx.get(f"{b.url}/ready").status_code == 200, 10, "ready again")
    again = b.chat({"message": "hi"})
    assert again.of("complete")[0]["text"] == "The capital of France is Paris."


def test_health_and_ready_report_the_event_log_and_the_store(b: Server) -> None:
    health = httpx.get(f"{b.url}/health").json()
    assert (health["event_log"], health["store"]) == ("redis", "postgresql")
    ready = httpx.get(f"{b.url}/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "event_log": "ok", "store": "ok"}


@pytest.fixture
def nginx(a: Server, b: Server, tmp_path: Path) -> Iterator[Server]:
    """nginx in front of replicas a and b, configured as docs/deploy.md says."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.skip("nginx is not installed here (.ci/run installs Debian's nginx-light)")
    doc = (ROOT / "docs" / "deploy.md").read_text()
    site = re.search(r"```nginx\n(.*?)```", doc, re.S)
    assert site is not None, "docs/deploy.md has an nginx block"
    port = free_port()
    upstreams = "".join(f"    server {s.url.removeprefix('http://')};\n" for s in (a, b))
    config = re.sub(r"(    server [\d.]+:\d+;\n)+", upstreams, site.group(1))
    config = config.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = " ".join(
        f"{kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp}\n{config}}}\n"
    )
    proc = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", proc, tmp_path / "error.log")
    try:
        wait_until_up(f"{server.url}/ready", proc, server.log)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


def test_behind_nginx_as_deployed_streams_flow_and_resume_on_any_replica(nginx: Server) -> None:
    first = nginx.chat({"message": "hi", "params": SLOW}, stop_after=6)
    assert first.status == 200
    assert first.types[0] == "start"
    assert len(first.chunks) >= 4  # events arrive as they are generated, not in one buffer
    run_id = first.headers["x-run-id"]
    # nginx picks either replica for each
    resumed = [follow(nginx, run_id, str(after)) for after in (len(first.messages), 3)]
    for after, rest in ((len(first.messages), resumed[0]), (3, resumed[1])):
        assert ids(rest) == list(range(after + 1, after + 1 + len(ids(rest))))
        assert rest.types[-1] == "complete"
    assert deltas(first) + deltas(resumed[0]) == TEXT
