"""Fixtures shared by the unit tests that need a real database or a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ssechat.eventlog import EventLog
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.store import Store, sqlite_url
from tests.postgres import postgres_bin, postgres_cluster
from tests.redis import redis_server

NewLog = Callable[..., EventLog]


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster's URL, one for the session: each test that uses it
    makes its own database (see `store`)."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs Debian's postgresql)")
    with postgres_cluster() as cluster:
        yield cluster.url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The same tests on both engines; a fresh database each time."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        base: str = request.getfixturevalue("postgres")
        name = f"t_{uuid.uuid4().hex}"
        admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = base.rsplit("/", 1)[0] + "/" + name
    opened = await Store.open(url)
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway Redis server's URL, one for the session: each test keeps to keys of its
    own (see `new_log`)."""
    with redis_server() as server:
        yield server.url


@pytest.fixture(params=["memory", "redis"])
async def new_log(request: pytest.FixtureRequest) -> AsyncIterator[NewLog]:
    """`new_log(retention=..., **kwargs)`: an event log on the backend under test, closed at
    the end. On Redis every log of one test shares a key prefix of that test alone, so two
    logs stand for two replicas of one deployment; `kwargs` (such as `owner_ttl`) go to
    `RedisEventLog` only."""
    logs: list[EventLog] = []
    if request.param == "memory":

        def new(retention: float = 300.0, **kwargs: float) -> EventLog:
            logs.append(MemoryEventLog(retention=retention))
            return logs[-1]

    else:
        from ssechat.eventlog.redis import RedisEventLog

        url: str = request.getfixturevalue("redis_url")
        prefix = f"t{uuid.uuid4().hex[:12]}:"

        def new(retention: float = 300.0, **kwargs: float) -> EventLog:
            logs.append(RedisEventLog(url, retention=retention, prefix=prefix, **kwargs))
            return logs[-1]

    yield new
    async with asyncio.timeout(10):  # a hang guard: closing must not wait on Redis
        for log in logs:
            await log.aclose()
