"""One benchmark run: every scenario against every server, on the same machine, in one go.

Scenario by scenario, each server starts fresh, pinned to CPU 0, and a load generator on
CPU 1 measures it; then the next server. Interleaving servers within a scenario (rather than
running one server's whole suite, then the next's) spreads slow drifts of a shared machine
over all of them. Throughput goes further: every server is measured in several rounds, each
round in a rotated order, and the round with the median events/s stands for it. A shared
machine's speed swings from one minute to the next (the same server at 1,000 streams has
given 30,000 and 69,000 events/s in consecutive runs), so a ratio of two single windows says
as much about when each ran as about the servers. The results go to one JSON document, from
which bench.report writes the Markdown and the plots.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from bench import machine, nodelay
from bench.procs import Server, idle, loadgen, pinning, wrk
from bench.report import median

SERVERS = ("T", "R", "A", "B", "F", "S")
SCENARIOS = ("nodelay", "throughput", "wrk", "latency", "first_byte", "idle", "resume")
LABELS = {
    "T": "T: trivial (one pre-built write per response; calibration)",
    "R": "R: raw uvloop protocol",
    "A": "A: Starlette StreamingResponse",
    "B": "B: sse-starlette EventSourceResponse",
    "F": "F: FastAPI EventSourceResponse",
    "S": "ssechat (run → event log → subscriber → dialect → socket)",
    "Sf": "ssechat, idle followers: 100 streams per run, `GET /v1/runs/{id}/events`",
}


def available() -> tuple[str, ...]:
    """The servers this environment can run: F only with a FastAPI that has `fastapi.sse`."""
    return tuple(s for s in SERVERS if s != "F" or importlib.util.find_spec("fastapi.sse"))


@dataclass(frozen=True)
class Plan:
    """What a run measures; `QUICK` is the same shape, tiny (the smoke test's)."""

    quick: bool = False
    servers: tuple[str, ...] = SERVERS
    scenarios: tuple[str, ...] = SCENARIOS
    throughput_streams: tuple[int, ...] = (1, 100, 1000)
    throughput_events: int = 1000  # per response
    throughput_warmup: float = 3.0
    throughput_measure: float = 6.0
    throughput_rounds: int = 3
    throughput_drain: float = 180.0
    wrk_connections: int = 100
    latency_streams: int = 1000
    latency_rate: float = 20.0  # events/s per stream
    latency_settle: float = 2.0
    latency_measure: float = 10.0
    latency_ramp: float = 15.0
    first_byte_samples: int = 300
    first_byte_warmup: int = 30
    first_byte_events: int = 10
    idle_levels: tuple[int, ...] = (1000, 5000, 10000, 20000)
    idle_keepalive: float = 5.0
    idle_delay: float = 60.0  # seconds between the model's tokens: an idle stream
    idle_settle: float = 1.0  # after opening a level, before reading the server's memory
    idle_hold: float = 11.0
    resume_runs: int = 20
    resume_passes: int = 51  # the first warms up
    resume_missed: int = 1000


QUICK = Plan(
    quick=True,
    scenarios=tuple(s for s in SCENARIOS if s != "wrk"),  # wrk may not be installed (CI)
    throughput_streams=(1, 10),
    throughput_events=200,
    throughput_warmup=0.2,
    throughput_measure=0.5,
    throughput_rounds=2,
    throughput_drain=30.0,
    latency_streams=20,
    latency_settle=0.2,
    latency_measure=0.5,
    latency_ramp=0.5,
    first_byte_samples=10,
    first_byte_warmup=2,
    idle_levels=(20, 50),
    idle_keepalive=0.3,
    idle_delay=5.0,
    idle_settle=0.2,
    idle_hold=0.7,
    resume_runs=2,
    resume_passes=2,
    resume_missed=50,
)

Log = Callable[[str], None]


def run(plan: Plan, command: str, log: Log = print) -> dict[str, Any]:
    """Run every scenario of `plan`; the results document."""
    server_pin, load_pin = pinning()
    started = time.time()
    results: dict[str, Any] = {
        "command": command,
        "plan": asdict(plan),
        "machine": machine.describe(),
        "pinned": bool(server_pin),
        "load_before": machine.load_average(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "labels": LABELS,
        "unavailable": [s for s in SERVERS if s not in available()],
    }

    def measure(name: str, ping: float, scenario: str, timeout: float, **kw: Any) -> Any:
        with Server(name, ping, server_pin) as server:
            return loadgen(server, scenario, load_pin, timeout, **kw)

    streaming = [s for s in plan.servers if s != "T"]
    p = plan
    for scenario in SCENARIOS:
        results[scenario] = [] if scenario == "nodelay" else {}
    if "nodelay" in p.scenarios:
        log("TCP_NODELAY on accepted sockets …")
        results["nodelay"] = nodelay.check_all()

    for streams in p.throughput_streams if "throughput" in p.scenarios else ():
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in plan.servers}
        for i in range(p.throughput_rounds):
            # Rotated: no server always runs first in a level, or right after the same one.
            shift = i % len(plan.servers)
            for name in plan.servers[shift:] + plan.servers[:shift]:
                log(f"throughput: {name}, {streams} streams, round {i + 1} …")
                cell = measure(
                    name, 15.0, "throughput", p.throughput_drain + 120,
                    streams=streams, n=p.throughput_events, warmup=p.throughput_warmup,
                    measure=p.throughput_measure, drain=p.throughput_drain,
                )  # fmt: skip
                rounds[name].append(cell)
        results["throughput"][str(streams)] = {
            name: median_round(rounds[name]) for name in plan.servers
        }

    for name in [s for s in ("T", "A", "S") if s in plan.servers and "wrk" in p.scenarios]:
        log(f"wrk cross-check: {name} …")
        with Server(name, 15.0, server_pin) as server:
            results["wrk"][name] = wrk(
                server, load_pin, p.wrk_connections, p.throughput_measure, p.throughput_events
            )

    for name in streaming if "latency" in p.scenarios else ():
        log(f"paced latency: {name}, {p.latency_streams} streams × {p.latency_rate:g}/s …")
        results["latency"][name] = measure(
            name, 15.0, "latency", p.latency_ramp + p.latency_settle + p.latency_measure + 120,
            streams=p.latency_streams, rate=p.latency_rate, settle=p.latency_settle,
            measure=p.latency_measure, ramp=p.latency_ramp,
        )  # fmt: skip

    for name in streaming if "first_byte" in p.scenarios else ():
        log(f"request to first byte: {name} …")
        results["first_byte"][name] = measure(
            name, 15.0, "first_byte", 300,
            samples=p.first_byte_samples, warmup=p.first_byte_warmup, n=p.first_byte_events,
        )  # fmt: skip

    followers = ["Sf"] if "S" in plan.servers else []
    for name in [*streaming, *followers] if "idle" in p.scenarios else ():
        log(f"idle streams: {name}, up to {p.idle_levels[-1]} …")
        with Server(name, p.idle_keepalive, server_pin) as server:
            results["idle"][name] = idle(
                server, load_pin, list(p.idle_levels), p.idle_delay, p.idle_settle, p.idle_hold
            )

    if "S" in plan.servers and "resume" in p.scenarios:
        log(f"resume after {p.resume_missed} missed events: S …")
        results["resume"]["S"] = measure(
            "S", 15.0, "resume", 300,
            runs=p.resume_runs, per_run=p.resume_passes, missed=p.resume_missed,
        )  # fmt: skip
        if "T" in plan.servers:
            # The floor: the same number of events as one pre-built write, asked for and read
            # the same way. No server can replay them faster on this machine.
            log(f"resume floor: T, {p.resume_missed} events in one write …")
            results["resume"]["T"] = measure(
                "T", 15.0, "first_byte", 300,
                samples=p.resume_runs * (p.resume_passes - 1), warmup=p.resume_runs,
                n=p.resume_missed,
            )  # fmt: skip

    results["seconds"] = time.time() - started
    results["load_after"] = machine.load_average()
    return results


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median events/s (of an even count, the lower of the middle two),
    with every round beside it under `rounds`."""
    return {**median(rounds, lambda cell: float(cell["events_per_s"])), "rounds": rounds}


def plan_for(
    quick: bool, servers: tuple[str, ...] | None = None, scenarios: tuple[str, ...] | None = None
) -> Plan:
    plan = replace(QUICK if quick else Plan(), servers=servers or available())
    return replace(plan, scenarios=scenarios) if scenarios else plan
