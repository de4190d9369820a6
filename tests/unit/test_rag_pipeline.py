"""The `rag` pipeline (ssechat.pipelines.rag) with the scripted model and a real SQLite store:
the order of its events, the prompt, follow-ups, the quality it reports, and no invention
when the documents hold no answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ssechat.config import DEFAULT_RAG_SYSTEM_PROMPT, Settings
from ssechat.errors import ModelError
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.events import Complete, Delta, Event, Followups, Metadata, Sources, Status
from ssechat.models import GenerationParams, Message, ModelDelta
from ssechat.models.scripted import ScriptedBackend
from ssechat.pipelines import Context, get_pipeline
from ssechat.pipelines.rag import NO_SOURCES_ANSWER
from ssechat.retrieval.documents import ingest
from ssechat.runs import RunManager
from ssechat.services import Services
from ssechat.store import Store, sqlite_url

RUNS = b"""# Runs

## Resume

A client that lost its connection resumes the run with the Last-Event-ID header and misses
nothing: it gets every event after that id, then the live tail.

## Grace period

A run whose last client went away keeps generating for a grace period of 30 seconds.
"""
KEYS = b"# Keys\n\nCreate an API key with ssechat keys create; only its hash is stored.\n"
QUESTION = "How does a client resume a run after losing its connection?"
ANSWER = "A client resumes the run with the Last-Event-ID header [1]."
FOLLOWUP = "Can I resume twice?"


class Recording(ScriptedBackend):
    """The scripted model, keeping the messages of every call."""

    def __init__(self, text: str = ANSWER) -> None:
        super().__init__(text)
        self.calls: list[Sequence[Message]] = []

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        self.calls.append(messages)
        async for delta in super().stream(messages, params):
            yield delta


class FailingSecondCall(Recording):
    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        if self.calls:
            self.calls.append(messages)
            raise ModelError("the model server went away")
            yield ModelDelta()  # pragma: no cover  (makes this an async generator)
        async for delta in super().stream(messages, params):
            yield delta


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url(tmp_path))
    settings = Settings(chunk_size=400, chunk_overlap=0)
    await ingest(opened, "alice", "runs.md", RUNS, settings)
    await ingest(opened, "alice", "keys.md", KEYS, settings)
    yield opened
    await opened.close()


def context(store: Store, model: ScriptedBackend, question: str = QUESTION, **env: Any) -> Context:
    settings = Settings(**env)
    services = Services(settings, model, RunManager(MemoryEventLog()), store)
    return Context(question, model, GenerationParams(), user="alice", services=services)


async def run_pipeline(ctx: Context) -> list[Event | str]:
    async with asyncio.timeout(10):
        return [item async for item in get_pipeline("rag")(ctx)]


async def test_a_question_streams_stages_sources_answer_followups_and_quality(
    store: Store,
) -> None:
    model = Recording()
    model.enqueue(ANSWER, "1. Can I resume twice?\n2. How long is the grace period?")
    items = await run_pipeline(context(store, model))
    kinds = [type(i).__name__ for i in items]
    assert kinds[:3] == ["Status", "Sources", "Status"]
    assert items[0] == Status("retrieving")
    assert items[2] == Status("generating")
    assert "".join(i for i in items if isinstance(i, str)) == ANSWER
    assert kinds[-2:] == ["Followups", "Metadata"]
    followups = items[-2]
    assert isinstance(followups, Followups)
    assert followups.questions == ("Can I resume twice?", "How long is the grace period?")
    sources = items[1]
    assert isinstance(sources, Sources)
    first = sources.sources[0]
    assert (first.title, first.uri, first.metadata["n"]) == ("Runs › Resume", "runs.md", 1)
    assert "Last-Event-ID header" in first.text
    assert first.score > 0
    assert all(s.metadata["coverage"] >= 0.5 for s in sources.sources)


async def test_the_prompt_numbers_the_sources_and_asks_the_question(store: Store) -> None:
    model = Recording()
    await run_pipeline(context(store, model, rag_followups=0))
    (messages,) = model.calls  # no follow-up call when none are asked for
    system, user = messages
    assert (system.role, system.content) == ("system", DEFAULT_RAG_SYSTEM_PROMPT)
    assert "[1] Runs › Resume\nA client that lost its connection" in user.content
    assert user.content.endswith(f"Question: {QUESTION}")


async def test_a_configured_system_prompt_replaces_the_default(store: Store) -> None:
    model = Recording()
    ctx = context(store, model, rag_followups=0)
    await run_pipeline(replace(ctx, system_prompt="Be brief."))
    assert model.calls[0][0].content == "Be brief."


async def test_no_relevant_document_means_no_sources_and_no_invented_answer(
    store: Store,
) -> None:
    model = Recording("Lima is the capital of Peru.")
    items = await run_pipeline(context(store, model, "What is the capital of Peru?"))
    assert items[:2] == [Status("retrieving"), Sources(())]
    assert [i for i in items if isinstance(i, str)] == [NO_SOURCES_ANSWER]
    assert model.calls == []  # the model is not asked at all
    metadata = items[-1]
    assert isinstance(metadata, Metadata)
    assert metadata.quality is not None
    assert metadata.quality["grounding_score"] is None
    assert metadata.quality["hallucination"] is False


async def test_another_users_documents_are_not_sources(store: Store) -> None:
    model = Recording()
    ctx = context(store, model)
    items = await run_pipeline(replace(ctx, user="bob"))
    assert Sources(()) in items
    assert model.calls == []


async def test_a_model_that_writes_no_questions_gets_no_followups(store: Store) -> None:
    model = Recording()
    model.enqueue(ANSWER, "The grace period is thirty seconds. Keys are hashed.")
    items = await run_pipeline(context(store, model))
    assert not any(isinstance(i, Followups) for i in items)
    assert len(model.calls) == 2


async def test_a_failing_followup_call_leaves_the_answer_standing(store: Store) -> None:
    model = FailingSecondCall()
    items = await run_pipeline(context(store, model))
    assert "".join(i for i in items if isinstance(i, str)) == ANSWER
    assert not any(isinstance(i, Followups) for i in items)
    assert isinstance(items[-1], Metadata)


async def test_the_quality_is_computed_from_the_answer_and_differs_between_answers(
    store: Store,
) -> None:
    qualities = []
    for answer in (ANSWER, "Bananas are yellow [1].", "It resumes with Last-Event-ID [9]."):
        model = Recording(answer)
        items = await run_pipeline(context(store, model, rag_followups=0))
        metadata = items[-1]
        assert isinstance(metadata, Metadata)
        assert metadata.quality is not None
        qualities.append(metadata.quality)
    grounded, unsupported, invalid = qualities
    assert (grounded["grounding_score"], grounded["hallucination"]) == (1.0, False)
    assert (unsupported["grounding_score"], unsupported["hallucination"]) == (0.2, True)
    assert invalid["invalid_citations"] == 1
    assert invalid["grounding_score"] == 0.8


async def test_through_a_run_the_quality_is_merged_and_both_calls_are_counted(
    store: Store,
) -> None:
    model = Recording()
    model.enqueue(ANSWER, FOLLOWUP)
    ctx = context(store, model)
    runs = RunManager(MemoryEventLog())
    run = await runs.start("rag", get_pipeline("rag"), ctx)
    events = []
    after = 0
    async with asyncio.timeout(10):
        while True:
            batch = await runs.log.read(run.id, after, 1.0)
            events += [e for _, e in batch.entries]
            after = batch.entries[-1][0] if batch.entries else after
            if batch.closed:
                break
    types = [e.type for e in events]
    assert types[:4] == ["start", "status", "sources", "status"]
    assert types[-3:] == ["followups", "metadata", "complete"]
    assert types.count("metadata") == 1
    metadata = events[-2]
    complete = events[-1]
    assert isinstance(metadata, Metadata)
    assert isinstance(complete, Complete)
    assert metadata.quality is not None
    assert metadata.quality["grounding_score"] == 1.0
    assert complete.text == "".join(e.text for e in events if isinstance(e, Delta)) == ANSWER
    assert metadata.usage is not None
    # The answer's tokens and the follow-ups': both calls counted.
    assert metadata.usage.completion_tokens == len(ANSWER.split()) + len(FOLLOWUP.split())
    await runs.aclose()
