"""SQLite's writer (ssechat.store.writer): writes that wait together go in one transaction,
each caller gets its own result, and a write outlives a caller that gave up on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from ssechat.store.writer import SqliteWriter


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[tuple[SqliteWriter, list[int]]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    opened = SqliteWriter(engine, asyncio.Lock())
    yield opened, commits
    await opened.aclose()


def insert(n: int) -> object:
    def job(s: Session) -> int:
        s.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        return n * 10

    return job


def count(s: Session) -> int:
    return int(s.execute(text("SELECT count(*) FROM t")).scalar_one())


async def test_writes_that_wait_together_share_a_commit_and_each_gets_its_result(
    writer: tuple[SqliteWriter, list[int]],
) -> None:
    w, commits = writer
    results = await asyncio.gather(*(w.run(insert(n)) for n in range(50)))
    assert results == [n * 10 for n in range(50)]
    assert await w.run(count) == 50
    assert len(commits) < 10  # not one per write


async def test_a_failing_write_is_rolled_back_alone(writer: tuple[SqliteWriter, list[int]]) -> None:
    w, _ = writer
    results = await asyncio.gather(
        w.run(insert(1)), w.run(insert(1)), w.run(insert(2)), return_exceptions=True
    )
    assert [results[0], results[2]] == [10, 20]
    assert "UNIQUE" in str(results[1])
    assert await w.run(count) == 2


async def test_a_write_whose_caller_is_cancelled_is_still_made(
    writer: tuple[SqliteWriter, list[int]],
) -> None:
    w, _ = writer
    caller = asyncio.create_task(w.run(insert(7)))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await w.run(count) == 1
