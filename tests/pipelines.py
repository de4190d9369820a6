"""Pipelines the tests register with `ssechat serve --pipeline tests.pipelines:NAME`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from pathlib import Path

from ssechat import Context, sources, status
from ssechat.events import Event


async def slow_words(ctx: Context) -> AsyncGenerator[Event | str, None]:
    """The question back, one word every 0.1 s; its `finally` leaves a mark in the file named
    by $MARK_FILE, so a test can see that a cancel reached the generator."""
    try:
        yield status("thinking", "slowly")
        yield sources({"id": "1", "title": "The question", "text": ctx.question, "score": 1.0})
        for i, word in enumerate(ctx.question.split()):
            await asyncio.sleep(0.1)
            yield ("" if i == 0 else " ") + word
    finally:
        # A few bytes, synchronously: the point is that this line runs at all when cancelled.
        Path(os.environ["MARK_FILE"]).write_text(f"finally ran for {ctx.run_id}")  # noqa: ASYNC240


async def broken(ctx: Context) -> AsyncGenerator[Event | str, None]:
    yield "partial "
    raise RuntimeError("secret internal detail")


async def wrong_type(ctx: Context) -> AsyncGenerator[Event | str, None]:
    yield "fine "
    yield {"not": "an event"}  # type: ignore[misc]
