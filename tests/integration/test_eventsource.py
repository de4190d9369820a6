"""A standard WHATWG EventSource, not our own client, survives a connection cut mid-stream.

The browser's EventSource is what most ssechat clients will be, and it resumes on its own
terms: it reconnects after `retry:` milliseconds, sends `Last-Event-ID` with the id of the last
message it *dispatched*, and throws away a message cut before its blank line. So the server has
to re-send exactly the cut message and everything after it. The client here is the `eventsource`
npm package (tests/js), run by Node as an unmodified EventSource; between it and the server sits
a TCP proxy that cuts the first connection in the middle of an SSE message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server
from tests.proxy import CuttingProxy

JS_DIR = Path(__file__).resolve().parents[1] / "js"
CLIENT = JS_DIR / "eventsource_client.mjs"

# 80 words at 0.05 s: a 4 s run, so the cut lands while the model is still generating and the
# second connection gets a replay followed by a live tail.
TEXT = " ".join(f"word{i}" for i in range(80))
PARAMS = {"text": TEXT, "delay": 0.05}
# Past the headers, the `retry:`, `start`, `status` and a couple of dozen deltas.
CUT_AFTER = 1500


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the EventSource client runs on Node)")
    if not (JS_DIR / "node_modules" / "eventsource").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `npm ci` in tests/js")
    return node


@pytest.fixture(scope="module")
def quick_retry(servers: Any) -> Server:
    """A scripted server whose `retry:` is 200 ms, so the EventSource reconnects quickly."""
    server: Server = servers(model_backend="scripted", retry_ms="200")
    return server


def follow_with_eventsource(node: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [node, str(CLIENT), url], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"client exited {done.returncode}: {done.stdout}{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_an_eventsource_cut_mid_message_reconnects_by_itself_and_gets_every_event_once(
    node: str, quick_retry: Server
) -> None:
    started = quick_retry.chat({"message": "hi", "params": PARAMS}, stop_after=1)
    # The POST hung up after `start`; the run goes on alone within the grace period.
    run_id = started.headers["x-run-id"]
    upstream_port = int(quick_retry.url.rsplit(":", 1)[1])

    with CuttingProxy(upstream_port, cut_after_bytes=CUT_AFTER) as proxy:
        seen = follow_with_eventsource(
            node, f"http://127.0.0.1:{proxy.port}/v1/runs/{run_id}/events"
        )
    assert len(proxy.connections) >= 2, seen
    assert seen["opens"] >= 2, seen
    first, second = proxy.connections[:2]

    # The proxy really cut the first connection, past the headers, inside a delta message.
    assert first.cut_in is not None, f"no cut; first connection relayed {len(first.body)} bytes"
    assert len(first.body) >= CUT_AFTER
    assert not first.body.endswith(b"\n\n")
    assert b"retry: 200\n" in first.body
    assert seen["errors"], "the cut was not reported as a connection error"

    # It resumed rather than restarted: the second request named the last message the client
    # dispatched, which is the one before the half message it had to discard.
    assert "last-event-id" not in first.request_headers
    assert second.request_headers.get("last-event-id") == str(first.cut_in - 1)

    # Every event exactly once, in order: ids 1..n, no gap, no repeat.
    events = seen["events"]
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    deltas = len(TEXT.split())
    assert types == ["start", "status", *["delta"] * deltas, "metadata", "complete"]

    # The cut fell on a delta while the model was still generating: before start + total time.
    data = [json.loads(e["data"]) for e in events]
    assert types[first.cut_in - 1] == "delta"
    generated_until = datetime.fromisoformat(data[0]["created_at"]).timestamp() + (
        data[-2]["timings"]["total_ms"] / 1000
    )
    assert first.cut_at is not None
    assert first.cut_at < generated_until

    text = "".join(d["text"] for d, t in zip(data, types, strict=True) if t == "delta")
    assert text == TEXT
    assert data[-1]["text"] == TEXT
    assert data[0]["run_id"] == run_id
