"""Processes of a benchmark run: servers pinned to one CPU, load generators to the other.

Servers start fresh for every scenario (no state carried from one to the next: ssechat keeps
ended runs' events for `event_retention`), listen on 127.0.0.1 only, and are stopped with
SIGTERM, then SIGKILL after a bound, by the process id this module started.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import wire

ROOT = Path(__file__).resolve().parent.parent
FD_LIMIT = 65536  # 20,000 idle streams need as many descriptors on each side


def pinning() -> tuple[list[str], list[str]]:
    """`taskset` prefixes for the server (CPU 0) and the load (CPU 1), if there are two."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(extra: dict[str, str]) -> dict[str, str]:
    # No SSECHAT_* from the caller's environment: a run measures the settings it states.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSECHAT_")}
    # src/ first: a run measures the ssechat of this checkout, not whatever copy is installed
    # (a non-editable `pip install .` would otherwise be what the servers import).
    path = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    return {**env, **extra}


def _raise_fd_limit() -> None:
    """Raise this process's descriptor limit (children inherit it): as root the hard limit
    can go up too; otherwise as far as the hard limit allows."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((FD_LIMIT, max(FD_LIMIT, hard)), (min(FD_LIMIT, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return
        except (ValueError, OSError):
            continue


@dataclass
class Server:
    """One server process: a baseline (`python -m bench.servers NAME`) or `ssechat serve`."""

    name: str
    keepalive: float
    pin: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ssechat-bench-")))

    def argv(self) -> tuple[list[str], dict[str, str]]:
        if self.name in ("S", "Sf"):  # Sf: the same server, followed differently
            argv = [
                sys.executable, "-m", "ssechat", "serve", "--port", str(self.port),
                "--model-backend", "scripted", "--data-dir", str(self.tmp / "data"),
                "--keepalive-interval", str(self.keepalive), "--log-level", "warning",
            ]  # fmt: skip
            return argv, {"SSECHAT_DRAIN_TIMEOUT": "0"}  # stopping is not measured: no wait
        argv = [sys.executable, "-m", "bench.servers", self.name, "--port", str(self.port)]
        return [*argv, "--keepalive", str(self.keepalive)], {}

    def __enter__(self) -> Server:
        _raise_fd_limit()
        self.port = free_port()
        argv, env = self.argv()
        log = (self.tmp / "server.log").open("wb")
        # cwd: a fresh directory, so that no developer's .env reaches ssechat's settings.
        self.proc = subprocess.Popen(
            [*self.pin, *argv], cwd=self.tmp, env=child_env(env), stdout=log, stderr=log
        )
        log.close()
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        path = self.tmp / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.name} exited:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(wire.health_request())
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server {self.name} not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def loadgen(
    server: Server, scenario: str, pin: list[str], timeout: float, **params: Any
) -> dict[str, Any]:
    """Run one scenario in a load-generator process against `server`; its JSON result."""
    spec = {
        "scenario": scenario,
        "target": server.name,
        "port": server.port,
        "server_pid": server.pid,
        "fd_limit": FD_LIMIT,
        **params,
    }
    argv = [*pin, sys.executable, "-m", "bench.loadgen", json.dumps(spec)]
    done = subprocess.run(
        argv, cwd=ROOT, env=child_env({}), capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"loadgen {scenario} against {server.name} failed ({done.returncode}):\n"
            f"{done.stderr.decode(errors='replace')[-4000:]}\nserver log:\n{server.log()}"
        )
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def wrk(server: Server, pin: list[str], connections: int, seconds: float, n: int) -> float | None:
    """Whole-response throughput by wrk (a C client), in events/s; None without wrk."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    ask = wire.Ask(n)
    raw = (wire.ssechat_request if server.name == "S" else wire.baseline_request)(server.port, ask)
    head, _, body = raw.partition(b"\r\n\r\n")
    path = head.split(b" ")[1].decode()
    script = server.tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    url = f"http://127.0.0.1:{server.port}{path}"
    argv = [*pin, exe, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    done = subprocess.run(
        [*argv, url], capture_output=True, timeout=seconds + 60, check=False, text=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1]) * n
    return None


def fd_limit(pid: int) -> int:
    """A process's (soft) limit on open descriptors."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return FD_LIMIT


STREAMS_PER_WORKER = 9000  # well under the 20,000 descriptors a process may have here


class IdleFleet:
    """Idle streams from as many load processes as their descriptor limits need, stepped
    level by level so that the server's memory is read with every stream of a level open."""

    def __init__(self, server: Server, pin: list[str], streams: int, delay: float) -> None:
        self.server = server
        count = max(1, -(-streams // STREAMS_PER_WORKER))
        spec = {
            "scenario": "idle_worker",
            "target": server.name,
            "port": server.port,
            "server_pid": server.pid,
            "fd_limit": FD_LIMIT,
            "delay": delay,
        }
        argv = [*pin, sys.executable, "-m", "bench.loadgen", json.dumps(spec)]
        self.workers = [
            subprocess.Popen(
                argv,
                cwd=ROOT,
                env=child_env({}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]

    def ask(self, commands: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        for worker, command in zip(self.workers, commands, strict=True):
            assert worker.stdin is not None
            worker.stdin.write(json.dumps(command) + "\n")
            worker.stdin.flush()
        deadline = time.monotonic() + timeout
        replies = []
        for worker in self.workers:
            assert worker.stdout is not None
            ready, _, _ = select.select(
                [worker.stdout], [], [], max(0, deadline - time.monotonic())
            )
            line = worker.stdout.readline() if ready else ""
            if not line:
                raise RuntimeError(f"idle load process gave no answer:\n{self._stderr(worker)}")
            replies.append(json.loads(line))
        return replies

    def each(self, command: dict[str, Any], timeout: float = 60) -> list[dict[str, Any]]:
        return self.ask([command] * len(self.workers), timeout)

    def open(self, streams: int, timeout: float) -> list[dict[str, Any]]:
        shares = [streams // len(self.workers)] * len(self.workers)
        shares[0] += streams - sum(shares)
        return self.ask([{"open": n} for n in shares], timeout)

    def close(self) -> None:
        for worker in self.workers:
            if worker.poll() is None and worker.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.stdin.write('{"close": 1}\n')
                    worker.stdin.flush()
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    @staticmethod
    def _stderr(worker: subprocess.Popen[str]) -> str:
        if worker.poll() is None:
            return "(still running)"
        return worker.stderr.read()[-4000:] if worker.stderr else ""


def idle(
    server: Server,
    pin: list[str],
    levels: list[int],
    delay: float,
    settle: float,
    hold: float,
) -> dict[str, Any]:
    """Idle streams held with keepalive: the server's RSS at each level of open streams
    (each its own request for events `delay` s apart), then `hold` s at the top level
    counting the pings or events each stream gets and the server's CPU use.

    A level above what the server's descriptor limit allows is lowered to fit, and the
    result says so (`capped_by_fd_limit`)."""
    from bench.loadgen import cpu_seconds, rss_bytes, slope

    limit = fd_limit(server.pid)
    room = limit - 100  # the listening socket, the database, pipes, the event loop's own
    shown = sorted({min(level, room) for level in levels})
    fleet = IdleFleet(server, pin, shown[-1], delay)
    try:
        points = [{"streams": 0, "rss": rss_bytes(server.pid)}]
        opening = 0.0
        held = failed = 0
        statuses: dict[str, int] = {}
        for level in shown:
            began = time.monotonic()
            replies = fleet.open(level, timeout=120 + level / 20)
            opening += time.monotonic() - began
            held = sum(r["ok"] for r in replies)
            failed = sum(r["failed"] for r in replies)
            statuses = {}
            for reply in replies:
                for status, count in reply["statuses"].items():
                    statuses[status] = statuses.get(status, 0) + count
            time.sleep(settle)  # let the server settle before reading its memory
            points.append({"streams": held, "rss": rss_bytes(server.pid)})
        fleet.each({"mark": 1})
        cpu, wall = cpu_seconds(server.pid), time.monotonic()
        time.sleep(hold)
        cpu, wall = cpu_seconds(server.pid) - cpu, time.monotonic() - wall
        after = fleet.each({"pings": 1})
    finally:
        fleet.close()
    alive = sum(r["alive"] for r in after)
    min_heard = min(r["min_heard"] for r in after)
    return {
        "levels": shown,
        "levels_asked": levels,
        "capped_by_fd_limit": limit if shown[-1] < levels[-1] else None,
        "workers": len(fleet.workers),
        "rss": points,
        "bytes_per_stream": slope([(p["streams"], p["rss"]) for p in points[1:]]),
        "held": alive,
        "failed": failed,
        "statuses": statuses,  # of the responses at the top level; "0": no head came
        "server_log": server.log()[-2000:] if failed else "",
        "open_per_s": held / opening if opening else 0.0,
        "hold_seconds": hold,
        "min_heard_in_hold": min_heard,  # pings or events: the stream is kept alive
        "seconds": wall,
        "server_cpu": cpu / wall,
        "responses": held + failed,
        "bad_responses": failed + (held - alive),
    }
