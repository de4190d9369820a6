"""Is TCP_NODELAY set on every accepted socket, in every way ssechat can be served?

SSE writes are small and must leave at once; with Nagle's algorithm on, a write could wait for
the ACK of the previous one (up to the peer's delayed-ACK timer, 40 ms on Linux). The event
loops set it themselves: uvloop on every TCP transport, asyncio's selector transport since
Python 3.6. This check does not trust that: it serves the real ssechat app (scripted model)
under uvicorn with each event loop and HTTP parser a deployment can choose (`ssechat serve`
is uvloop + httptools; an app mounting ssechat picks its own), hooks the protocol's
`connection_made` to read the option from the accepted socket itself (and the loop's type,
so a mode that silently fell back to another loop would show), and makes a request.

`python -m bench.nodelay` prints a JSON list: one entry per loop × http, with what was read.
It runs in a process of its own, as it patches uvicorn's protocols.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.procs import child_env

MODES = [("uvloop", "httptools"), ("uvloop", "h11"), ("asyncio", "httptools"), ("asyncio", "h11")]


def _hook(seen: list[tuple[str, int]]) -> None:
    """Note the running loop's type and the accepted socket's TCP_NODELAY in `seen`."""
    from uvicorn.protocols.http import h11_impl, httptools_impl

    for cls in (httptools_impl.HttpToolsProtocol, h11_impl.H11Protocol):
        original = cls.connection_made

        def connection_made(self: Any, transport: Any, _original: Any = original) -> None:
            sock = transport.get_extra_info("socket")
            loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
            seen.append((loop, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
            _original(self, transport)

        cls.connection_made = connection_made  # type: ignore[method-assign]


def _check(loop: str, http: str, seen: list[tuple[str, int]]) -> dict[str, Any]:
    """Serve ssechat with `loop` and `http` in a thread, make one request; what was seen."""
    import uvicorn

    from ssechat.app import create_app
    from ssechat.config import Settings

    seen.clear()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="ssechat-nodelay-"))
    settings = Settings(model_backend="scripted", data_dir=data, port=port)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, loop=loop, http=http, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        status = b""
        while time.monotonic() < deadline and not status:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    status = c.recv(64).split(b"\r\n")[0]
            except OSError:
                time.sleep(0.1)
    finally:
        server.should_exit = True
        thread.join(30)
    return {
        "loop": loop,
        "http": http,
        "accepted": len(seen),
        "nodelay": bool(seen) and all(on for _, on in seen),
        "loop_seen": sorted({name for name, _ in seen}),
        "response": status.decode(),
    }


def check_all() -> list[dict[str, Any]]:
    """Every mode, in a fresh interpreter (this one is not patched)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.nodelay"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tempfile.gettempdir(),  # no developer's .env
        env=child_env({}),
    )
    try:
        results: list[dict[str, Any]] = json.loads(done.stdout)
    except ValueError:
        error = done.stderr[-2000:]
        return [{"loop": lp, "http": h, "nodelay": False, "error": error} for lp, h in MODES]
    return results


def main() -> None:
    seen: list[tuple[str, int]] = []
    _hook(seen)
    print(json.dumps([_check(loop, http, seen) for loop, http in MODES]))


if __name__ == "__main__":
    main()
