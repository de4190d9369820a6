"""What goes over the wire in the benchmark: the event every server sends, and the requests.

Every server streams the same message as ssechat's canonical `delta` event,

    id: 7\\nevent: delta\\ndata: {"text":" 6712345678901"}\\n\\n

where the text is either a fixed token as long as a stamp (throughput) or a space and the
`time.monotonic_ns()` at which the server produced it (latency). CLOCK_MONOTONIC is
system-wide on Linux, so the load generator, another process on the same machine, subtracts
the stamp from its own clock on arrival: that is the latency the server added (plus the
kernel's loopback, which R, the raw-protocol baseline, shows alone).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import orjson

PING = b": ping\n\n"
# The fixed token has the width of a stamp, so both modes put the same bytes on the wire.
FIXED_TOKEN = b" " + b"7" * len(str(time.monotonic_ns()))
STAMP = re.compile(rb'"text":" (\d+)"')
DELTA = b"event: delta"


def event(seq: int, token: bytes) -> bytes:
    """One `delta` message with `token` (which must be JSON-safe) as its text."""
    return b'id: %d\nevent: delta\ndata: {"text":"%s"}\n\n' % (seq, token)


def stamp() -> bytes:
    return b" %d" % time.monotonic_ns()


def data_json(token: bytes) -> str:
    """The `data:` line's JSON, for the servers that format the message themselves."""
    return '{"text":"%s"}' % token.decode()  # noqa: UP031  (the same bytes as `event`)


@dataclass(frozen=True, slots=True)
class Ask:
    """One stream to request: `n` delta events, `delay` seconds apart (0: as fast as the
    server can, yielding to its event loop between events), stamped or fixed text."""

    n: int
    delay: float = 0.0
    stamp: bool = False


def _post(path: str, port: int, body: bytes) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (path.encode(), port, len(body), body)
    )


def baseline_request(port: int, ask: Ask) -> bytes:
    """The request a baseline server (bench.servers) answers: `POST /stream`."""
    body = orjson.dumps({"n": ask.n, "delay": ask.delay, "stamp": ask.stamp})
    return _post("/stream", port, body)


def ssechat_request(port: int, ask: Ask) -> bytes:
    """A chat request to `ssechat serve` on the scripted model: `n` one-word tokens.

    Without `stamp` the words are fixed text; with it each token carries its stamp and the
    model yields to the loop per token (see ssechat.models.scripted)."""
    params = {
        "text": " ".join(["x"] * ask.n),
        "delay": ask.delay,
        "stamp": ask.stamp or not ask.delay,  # the same per-token yield as the baselines
        "max_tokens": ask.n,
    }
    return _post("/v1/chat/stream", port, orjson.dumps({"message": "bench", "params": params}))


def resume_request(port: int, run_id: str, after: int) -> bytes:
    return (
        b"GET /v1/runs/%s/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Accept: text/event-stream\r\nLast-Event-ID: %d\r\n\r\n" % (run_id.encode(), port, after)
    )


def health_request(path: str = "/health") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode()
