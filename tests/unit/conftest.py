"""Fixtures shared by the unit tests that need a real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ssechat.store import Store, sqlite_url
from tests.postgres import postgres_bin, postgres_cluster


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
