"""A SQLite file's hot writes: on a thread of their own, those waiting taken together.

Every chat writes twice (its turn, then its answer's end). Through the async engine each
statement, the commit and the connection's reset are a hop to aiosqlite's thread and back,
and the hops cost more than the statements: 1.3 ms of CPU for a turn and its end. Here a
write is sync code run on this writer's thread (0.6 ms).

SQLite has one writer, so writes wait for each other. When many chats end and start at once,
a hundred streams that started together, say, they would each wait for every one before them;
instead the writes that came while one batch ran go together as the next, in one transaction:
one hop, one commit. A write that fails in a batch fails the batch's transaction, so then each
is run again in one of its own: only the failing one fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
Job = Callable[[Session], Any]


class SqliteWriter:
    def __init__(self, engine: Engine, turn: AbstractAsyncContextManager[Any]) -> None:
        self._engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._thread = ThreadPoolExecutor(1, "ssechat-store")
        self._turn = turn  # the store's: its other writes take turns with these
        self._waiting: list[tuple[Job, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, job: Callable[[Session], T]) -> T:
        """`job(session)` in a transaction, committed before this returns. A caller that is
        cancelled does not cancel the write: it is queued, and goes with its batch."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(done)

    async def aclose(self) -> None:
        if self._flusher is not None:
            await self._flusher
        # On its own thread: a SQLite connection is closed where it was opened.
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown()

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                async with self._turn:
                    try:
                        outcomes = await loop.run_in_executor(
                            self._thread, self._write, [job for job, _ in batch]
                        )
                    except Exception as exc:  # the commit itself failed: all of them did
                        outcomes = [(False, exc)] * len(batch)
                for (_, done), (ok, value) in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue
                    if ok:
                        done.set_result(value)
                    else:
                        done.set_exception(value)
        finally:
            self._flusher = None

    def _write(self, jobs: list[Job]) -> list[tuple[bool, Any]]:
        """On the writer's thread: the jobs in one transaction, or, if one fails, each in
        its own."""
        if len(jobs) > 1:
            try:
                with self._session.begin() as s:
                    return [(True, job(s)) for job in jobs]
            except Exception:  # rolled back: each again, alone
                pass
        outcomes: list[tuple[bool, Any]] = []
        for job in jobs:
            try:
                with self._session.begin() as s:
                    outcomes.append((True, job(s)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes
