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
from contextlib import contextmanager

from tests.conftest import free_port


def postgres_bin() -> str | None:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/VERSION/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    return os.path.dirname(found[-1]) if found[-1] else None


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield an asyncpg SQLAlchemy URL of a fresh, empty database."""
    bindir = postgres_bin()
    if not bindir:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="ssechat-pg-")
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
    port = free_port()
    run = lambda *argv: subprocess.run(  # noqa: E731
        _as_postgres([os.path.join(bindir, argv[0]), *argv[1:]]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(
        "pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "start",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
    )  # fmt: skip
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
