"""The machine and the software versions a run measured, for the report."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

PACKAGES = (
    "ssechat",
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "sse-starlette",
    "fastapi",
    "pydantic",
    "orjson",
    "sqlalchemy",
    "aiosqlite",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        return "not installed"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "versions": {p: _version(p) for p in PACKAGES},
        "wrk": _wrk(),
    }
