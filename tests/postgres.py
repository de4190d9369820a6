"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, a free port,
trust auth on loopback, stopped at the end. Needs Debian's `postgresql` package (`.ci/run`
installs it); tests using it skip with a clear message when it is absent.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
`postgres` system user that the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.conftest import free_port


def postgres_bin() -> str | None:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/VERSION/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    return os.path.dirname(found[-1]) if found[-1] else None


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class Cluster:
    """A running throwaway cluster: `url` for SQLAlchemy; `stop()` and `start()` to take the
    database away and bring it back (same port, same data)."""

    def __init__(self, bindir: str, root: str) -> None:
        self.bindir, self.root = bindir, root
        self.data = os.path.join(root, "data")
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = _as_postgres([os.path.join(self.bindir, argv[0]), *argv[1:]])
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = os.path.join(self.root, "log")
        self._run("pg_ctl", "-D", self.data, "-l", log, "-w", "-o", options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")


@contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """A fresh, empty, running cluster, removed afterwards."""
    bindir = postgres_bin()
    if not bindir:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="ssechat-pg-")
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
    cluster = Cluster(bindir, root)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        with suppress(subprocess.CalledProcessError):  # a test may have left it stopped
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
