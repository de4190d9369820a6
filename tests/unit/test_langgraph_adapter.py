"""A real LangGraph graph as a pipeline: statuses per node, sources, the model's tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from ssechat.eventlog.memory import MemoryEventLog
from ssechat.events import Complete, Delta, Error, Sources, Status
from ssechat.models import GenerationParams, Message, ModelDelta
from ssechat.models.scripted import ScriptedBackend
from ssechat.pipelines import Context
from ssechat.runs import RunManager
from tests.graphs import research

TEXT = "Runs outlive their connections [1]."


async def run_to_end(model: ScriptedBackend, cancel_after: int | None = None) -> list[object]:
    runs = RunManager(MemoryEventLog())
    ctx = Context(question="Do runs survive?", model=model, params=GenerationParams())
    run = await runs.start("research", research, ctx)
    events: list[object] = []
    after = 0
    async with asyncio.timeout(10):
        while True:
            batch = await runs.log.read(run.id, after, 1.0)
            for seq, event in batch.entries:
                after = seq
                events.append(event)
                if cancel_after is not None and isinstance(event, Delta):
                    cancel_after -= 1
                    if cancel_after == 0:
                        runs.cancel(run.id)
            if batch.closed:
                return events


async def test_each_node_is_a_status_its_sources_an_event_and_model_tokens_deltas() -> None:
    events = await run_to_end(ScriptedBackend(TEXT))
    stages = [e.stage for e in events if isinstance(e, Status)]
    assert stages == ["retrieve", "retrieving", "answer"]
    (found,) = [e for e in events if isinstance(e, Sources)]
    (source,) = found.sources
    assert (source.title, source.text, source.score) == (
        "Runs",
        "Runs survive dropped connections.",
        0.9,
    )
    assert source.uri == "docs/runs.md"
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) > 1
    complete = events[-1]
    assert isinstance(complete, Complete)
    assert complete.text == "".join(deltas) == TEXT


class Recording(ScriptedBackend):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.prompts: list[list[Message]] = []

    def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        self.prompts.append(list(messages))
        return super().stream(messages, params)


async def test_the_graphs_model_gets_the_question_as_the_last_user_message() -> None:
    model = Recording(TEXT)
    await run_to_end(model)
    (prompt,) = model.prompts
    assert prompt[-1] == Message("user", "Do runs survive?")


async def test_cancelling_stops_the_graph_and_its_model() -> None:
    model = ScriptedBackend(" ".join(f"w{i}" for i in range(50)), delay=0.05)
    events = await run_to_end(model, cancel_after=3)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "cancelled"
    produced = model.tokens_generated
    await asyncio.sleep(0.3)
    assert model.tokens_generated == produced < 50
