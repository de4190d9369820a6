"""The load generator: one scenario against one server, run in its own process on uvloop.

`python -m bench.loadgen '<json spec>'` prints one JSON object: the scenario's figures, the
checks that the server sent what was asked (events received == events sent), and how busy the
server and this process were during the measured window (from /proc and the process clock),
which is how a report shows that the load generator was not the bottleneck.

Every loop is bounded by a count or a deadline; every connection goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import uvloop

from bench import wire
from bench.client import Connection, Response, Totals, connect

Result = dict[str, Any]
CONNECT_CONCURRENCY = 200  # below uvicorn's accept backlog (2048)
IN_FLIGHT = 64  # idle streams: requests awaiting their response head, per load process


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    port: int
    server_pid: int

    @property
    def ssechat(self) -> bool:
        return self.name in ("S", "Sf")

    def stream(self, ask: wire.Ask) -> bytes:
        if self.ssechat:
            return wire.ssechat_request(self.port, ask)
        return wire.baseline_request(self.port, ask)


# -- measuring the processes --------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every CPU, every process) since boot."""
    with open("/proc/stat") as f:
        times = [int(v) for v in f.readline().split()[1:]]
    # user, nice, system, (idle, iowait: not busy), irq, softirq, steal; guests are in user
    return (sum(times[:3]) + sum(times[5:8])) / _TICK


class Meter:
    """Wall time and CPU use over a window: the server's, this process's, and everything
    else's on the machine (`other_cpu`: near 0 unless something else was running — then the
    window's figures are disturbed, and the per-CPU-second ones are the ones to trust)."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.wall = time.monotonic()
        self.server = cpu_seconds(server_pid)
        self.own = time.process_time()
        self.busy = busy_seconds()

    def stop(self) -> Result:
        wall = time.monotonic() - self.wall
        server = cpu_seconds(self.pid) - self.server
        own = time.process_time() - self.own
        return {
            "seconds": wall,
            "server_cpu": server / wall,
            "loadgen_cpu": own / wall,
            "other_cpu": max(0.0, busy_seconds() - self.busy - server - own) / wall,
        }


def raise_fd_limit(want: int) -> int:
    """As many descriptors as `want` if allowed (root may raise the hard limit); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((want, max(want, hard)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return limit[0]
        except (ValueError, OSError):
            continue
    return soft


def percentiles(values_ns: Sequence[int], points: Sequence[float]) -> dict[str, float]:
    """Percentiles in milliseconds (nearest rank); empty input gives an empty dict."""
    if not values_ns:
        return {}
    ordered = sorted(values_ns)
    last = len(ordered) - 1
    out = {f"p{p:g}": ordered[min(last, int(p / 100 * len(ordered)))] / 1e6 for p in points}
    out["max"] = ordered[-1] / 1e6
    out["mean"] = sum(ordered) / len(ordered) / 1e6
    return out


async def open_many(
    count: int, target: Target, totals: Totals, *, stamps: bool = False, detail: bool = False
) -> list[Connection]:
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Connection:
        async with sem:
            return await connect(target.port, totals, stamps=stamps, detail=detail)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def close_all(conns: Sequence[Connection]) -> None:
    for conn in conns:
        conn.abort()


# -- scenarios ----------------------------------------------------------------------------


async def throughput(
    target: Target,
    streams: int,
    n: int,
    warmup: float,
    measure: float,
    drain: float,
    ramp: float = 60.0,
) -> Result:
    """Events/s at saturation: `streams` connections, each asking for `n`-event responses
    back to back; the rate is the deltas received in a window that opens `warmup` s after
    every stream has had its first event (or `ramp` s have passed): a window opened at a
    fixed time measured fewer streams on a server slow to start them (uvicorn's, on uvloop,
    accepts a connection per turn of its loop). Responses in flight when the window closes
    are let finish (up to `drain` s) and checked too."""
    totals = Totals()
    conns = await open_many(streams, target, totals)
    request = target.stream(wire.Ask(n))
    stop = False
    complete: list[Response] = []

    async def worker(conn: Connection) -> None:
        while not stop:
            response = await conn.request(request)
            complete.append(response)
            if response.status != 200:
                return

    started = time.monotonic()
    workers = [asyncio.create_task(worker(c)) for c in conns]
    await asyncio.sleep(0)  # every worker's request is written: its first event awaited
    firsts = [c.first_event for c in conns]
    await asyncio.wait(firsts, timeout=ramp)
    ramped, streaming = time.monotonic() - started, sum(f.done() for f in firsts)
    await asyncio.sleep(warmup)
    before, meter = totals.deltas, Meter(target.server_pid)
    await asyncio.sleep(measure)
    received, window = totals.deltas - before, meter.stop()
    stop = True
    _, pending = await asyncio.wait(workers, timeout=drain)
    for task in pending:
        task.cancel()
    close_all(conns)
    await asyncio.gather(*workers, return_exceptions=True)
    return {
        "streams": streams,
        "ramp_seconds": ramped,  # until every stream had its first event
        "streaming": streaming,  # streams that had, when the warm-up began
        "events_per_response": n,
        "events_per_s": received / window["seconds"],
        **window,
        "responses": len(complete),
        "bad_responses": sum(r.status != 200 or r.deltas != n for r in complete),
        "bad_examples": [
            (r.status, r.deltas) for r in complete if r.status != 200 or r.deltas != n
        ][:5],
        "events_received": sum(r.deltas for r in complete),
        "events_sent": n * len(complete),
        "aborted_in_flight": len(pending),
    }


async def latency(
    target: Target, streams: int, rate: float, settle: float, measure: float, ramp: float
) -> Result:
    """Added latency at a paced load: `streams` streams of `rate` events/s each. Stamps of
    events arriving in a `measure` s window, `settle` s after every stream has started."""
    n = int(rate * (ramp + settle + measure + 1))
    ask = wire.Ask(n, delay=1 / rate, stamp=True)
    totals = Totals()
    conns = await open_many(streams, target, totals, stamps=True)
    request = target.stream(ask)
    pending: list[asyncio.Future[Response]] = []
    started = time.monotonic()
    for i, conn in enumerate(conns):  # spread over one pacing interval so phases differ
        pending.append(conn.request(request))
        if i % max(1, streams // 50) == 0:
            await asyncio.sleep(1 / rate / 50)
    await asyncio.wait([c.first_event for c in conns], timeout=ramp)
    ramped = time.monotonic() - started
    await asyncio.sleep(settle)
    totals.recording, meter = True, Meter(target.server_pid)
    await asyncio.sleep(measure)
    totals.recording, window = False, meter.stop()
    done, late = await asyncio.wait(pending, timeout=n / rate + 30)
    close_all(conns)
    results = [f.result() for f in done if not f.exception()]
    return {
        "streams": streams,
        "rate_per_stream": rate,
        "events_per_stream": n,
        "ramp_seconds": ramped,
        "latency_ms": percentiles(totals.latencies, (50, 90, 99, 99.9)),
        "samples": len(totals.latencies),
        "events_per_s": len(totals.latencies) / window["seconds"],
        "events_per_s_asked": streams * rate,
        **window,
        "responses": len(results),
        "bad_responses": sum(r.status != 200 or r.deltas != n for r in results) + len(late),
        "events_received": sum(r.deltas for r in results),
        "events_sent": n * len(results),
    }


async def first_byte(target: Target, samples: int, warmup: int, n: int) -> Result:
    """Request to first byte, to first event, and to the end of an `n`-event response, one
    request at a time on one keep-alive connection (for ssechat: validation, the stored turn,
    the run's start)."""
    totals = Totals()
    conn = await connect(target.port, totals)
    request = target.stream(wire.Ask(n))
    firsts: list[int] = []
    deltas: list[int] = []
    ends: list[int] = []
    bad = 0
    meter = Meter(target.server_pid)
    for i in range(warmup + samples):
        r = await conn.request(request)
        bad += r.status != 200 or r.deltas != n
        if i >= warmup:
            firsts.append(r.first_byte - r.sent)
            deltas.append(r.first_delta - r.sent)
            ends.append(r.done - r.sent)
    window = meter.stop()
    close_all([conn])
    return {
        "samples": samples,
        "events_per_response": n,
        "first_byte_ms": percentiles(firsts, (50, 99)),
        "first_event_ms": percentiles(deltas, (50, 99)),
        "response_ms": percentiles(ends, (50, 99, 99.9)),
        **window,
        "responses": warmup + samples,
        "bad_responses": bad,
    }


async def resume(target: Target, runs: int, per_run: int, missed: int) -> Result:
    """ssechat only: runs of `missed` deltas are streamed to the end, then resumed with a
    `Last-Event-ID` that leaves `missed` events to replay (from the in-memory log)."""
    totals = Totals()
    conn = await connect(target.port, totals, detail=True)
    ids: list[tuple[str, int]] = []
    for _ in range(runs):
        r = await conn.request(target.stream(wire.Ask(missed)))
        total = r.messages  # start, status, deltas, metadata, complete
        ids.append((r.headers[b"x-run-id"].decode(), total - missed))
    firsts: list[int] = []
    ends: list[int] = []
    bad = 0
    meter = Meter(target.server_pid)
    for i in range(per_run):
        for run_id, after in ids:
            r = await conn.request(wire.resume_request(target.port, run_id, after))
            bad += r.status != 200 or r.messages != missed
            if i:  # the first pass warms up
                firsts.append(r.first_byte - r.sent)
                ends.append(r.done - r.sent)
    window = meter.stop()
    close_all([conn])
    return {
        "missed": missed,
        "samples": len(ends),
        "first_byte_ms": percentiles(firsts, (50, 99, 99.9)),
        "caught_up_ms": percentiles(ends, (50, 99, 99.9)),
        **window,
        "responses": runs * per_run,
        "bad_responses": bad,
    }


async def idle_worker(target: Target, delay: float) -> Result:
    """One of the idle-stream load processes (a process has too few descriptors for 20,000
    streams): driven by bench.procs.IdleFleet, one JSON command a line on stdin —

    {"open": n}  open streams until this process holds n; answers how many got their head
    {"mark": 1}  remember what every stream has received so far (pings and events)
    {"pings": 1} answers the fewest pings or events a stream got since the mark, how many live
    {"close": 1} reset every connection and exit
    """
    loop = asyncio.get_running_loop()
    totals = Totals()
    # 20 slow events: the stream outlives the test; a longer text would only make the
    # scripted model hold more token strings per stream, which a real model does not.
    request = target.stream(wire.Ask(20, delay=delay))
    start = _start_followers if target.name == "Sf" else _start_streams
    conns: list[Connection] = []
    responses: list[Response] = []
    marks: list[int] = []
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command = json.loads(line) if line.strip() else {"close": 1}
        if "open" in command:
            want = max(0, command["open"] - len(conns))
            new = await open_many(want, target, totals, detail=True)
            conns += new
            responses += await start(new, request, timeout=60 + want / 20, port=target.port)
            statuses: dict[int, int] = {}
            for r in responses:
                statuses[r.status] = statuses.get(r.status, 0) + 1
            reply: Result = {
                "streams": len(conns),
                "ok": statuses.get(200, 0),
                "failed": len(responses) - statuses.get(200, 0),
                "statuses": statuses,  # 0: no response head (yet)
            }
        elif "mark" in command:
            marks = [r.pings + r.messages for r in responses]
            reply = {"marked": len(marks)}
        elif "pings" in command:
            got = [r.pings + r.messages - m for r, m in zip(responses, marks, strict=True)]
            pairs = zip(conns, responses, strict=True)
            alive = sum(not c.closed.done() and r.status == 200 for c, r in pairs)
            reply = {"min_heard": min(got) if got else 0, "alive": alive}
        else:
            close_all(conns)
            return {"closed": len(conns)}
        print(json.dumps(reply), flush=True)


async def _start_streams(
    conns: Sequence[Connection], request: bytes, timeout: float, port: int
) -> list[Response]:
    """Send `request` on every connection, at most IN_FLIGHT at a time awaiting their
    response heads: clients arriving in a steady flow rather than all in the same
    millisecond, which would measure the server's queueing instead of its idle streams."""
    sem = asyncio.Semaphore(IN_FLIGHT)
    deadline = time.monotonic() + timeout

    async def one(conn: Connection) -> Response:
        async with sem:
            response = conn.send(request)
            await asyncio.wait([conn.head], timeout=max(0.0, deadline - time.monotonic()))
            return response

    return list(await asyncio.gather(*(one(c) for c in conns)))


FOLLOWERS = 100  # streams per run in ssechat's follower variant (Sf)


async def _start_followers(
    conns: Sequence[Connection], request: bytes, timeout: float, port: int
) -> list[Response]:
    """ssechat, idle followers (Sf): every FOLLOWERS streams share one run. The first of
    each group starts it (`request`, a chat); the others follow it with
    `GET /v1/runs/{id}/events` (Last-Event-ID 0), as a second tab or a reconnect does. So
    the streams cost what a stream costs, and FOLLOWERS times fewer runs and stored turns."""
    responses: list[Response] = []
    deadline = time.monotonic() + timeout
    for first in range(0, len(conns), FOLLOWERS):
        group = conns[first : first + FOLLOWERS]
        left = max(0.0, deadline - time.monotonic())
        (leader,) = await _start_streams(group[:1], request, timeout=left, port=port)
        responses.append(leader)
        run_id = leader.headers.get(b"x-run-id", b"").decode()
        follow = wire.resume_request(port, run_id, 0)
        left = max(0.0, deadline - time.monotonic())
        responses += await _start_streams(group[1:], follow, timeout=left, port=port)
    return responses


def slope(points: Sequence[tuple[int, int]]) -> float:
    """Least-squares slope of (x, y) points."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return num / den if den else 0.0


SCENARIOS: dict[str, Callable[..., Coroutine[Any, Any, Result]]] = {
    "throughput": throughput,
    "latency": latency,
    "first_byte": first_byte,
    "resume": resume,
    "idle_worker": idle_worker,
}


def main(argv: Sequence[str] | None = None) -> None:
    spec = json.loads((argv or sys.argv[1:])[0])
    target = Target(spec.pop("target"), spec.pop("port"), spec.pop("server_pid"))
    scenario = SCENARIOS[spec.pop("scenario")]
    raise_fd_limit(spec.pop("fd_limit", 65536))
    result = uvloop.run(scenario(target, **spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
