"""Pipelines the tests register with `ssechat serve --pipeline tests.pipelines:NAME`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from pathlib import Path

from ssechat import Context, csv, followups, metadata, sources, sql, status, table
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


async def _words(text: str, delay: float = 0.03) -> AsyncGenerator[str, None]:
    for i, word in enumerate(text.split(" ")):
        await asyncio.sleep(delay)
        yield ("" if i == 0 else " ") + word


CITED_TEXT = (
    "Paris is the capital of France [1]. About 2.1 million people live in the city itself "
    "[2], and more than 12 million in its metropolitan area [1][2]."
)


async def cited(ctx: Context) -> AsyncGenerator[Event | str, None]:
    """A retrieval-shaped answer without a retriever: stages, two sources with links, an
    answer citing them as [1] and [2], follow-up questions and a quality figure."""
    yield status("retrieving", "2 documents")
    await asyncio.sleep(0.2)  # the search, as a page would see it take time
    yield sources(
        {
            "id": "1",
            "title": "Paris",
            "uri": "https://en.wikipedia.org/wiki/Paris",
            "text": "Paris is the capital and largest city of France.",
            "score": 0.92,
        },
        {
            "id": "2",
            "title": "Population of Paris (INSEE)",
            "uri": "https://www.insee.fr/en/statistiques",
            "text": "The city of Paris had 2,102,650 inhabitants in January 2023.",
            "score": 0.71,
        },
    )
    yield status("generating")
    async for piece in _words(CITED_TEXT):
        yield piece
    yield followups("What is the population of Lyon?", "When did Paris become the capital?")
    yield metadata(grounding=0.9)


TABULAR_TEXT = "Tokyo is the largest, with about 37 million people; 120 cities matched."


async def tabular(ctx: Context) -> AsyncGenerator[Event | str, None]:
    """A text-to-SQL-shaped answer without a database: the SQL, a capped table preview (one
    cell holds markup, which must show as text), a CSV link and a summary."""
    yield status("generating_sql")
    await asyncio.sleep(0.2)
    yield sql("SELECT name, country, population FROM cities ORDER BY population DESC LIMIT 120")
    yield status("running_sql")
    await asyncio.sleep(0.2)
    yield table(
        ["name", "country", "population"],
        [
            ["Tokyo", "Japan", 37_400_068],
            ["Delhi", "India", 28_514_000],
            ["<i>Shanghai</i>", "China", 25_582_000],
        ],
        row_count=120,
        truncated=True,
    )
    yield csv("/v1/files/cities.csv", 120, 3_912)
    yield status("generating")
    async for piece in _words(TABULAR_TEXT):
        yield piece


UNSAFE_TEXT = (
    "An image: <img src=x onerror=alert(1)> a script: <script>alert(2)</script> "
    "a [link](javascript:alert(3)) and **bold** text."
)


async def unsafe(ctx: Context) -> AsyncGenerator[Event | str, None]:
    """An answer full of markup a page must show as text, streamed word by word so tags
    arrive cut in pieces."""
    async for piece in _words(UNSAFE_TEXT):
        yield piece
