"""Runs (ssechat.runs.RunManager) with the scripted model: the same behaviour on both event
logs, in memory and on a real Redis; then several replicas (managers on `RedisEventLog`s of one
server) following, cancelling and taking over each other's runs."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import pytest

from ssechat.dialects.ssechat import CanonicalRenderer
from ssechat.eventlog import Entry, RunNotFound
from ssechat.eventlog.redis import RedisEventLog
from ssechat.events import (
    Complete,
    Delta,
    Error,
    Event,
    Metadata,
    Start,
    Status,
    Usage,
    loads,
)
from ssechat.models import GenerationParams, Message, ModelDelta
from ssechat.models.scripted import ScriptedBackend
from ssechat.pipelines import Context, get_pipeline
from ssechat.runs import LOST, Run, RunManager
from ssechat.sse import decode
from tests.unit.conftest import NewLog

TEXT = "The quick brown fox jumps over the lazy dog."
LONG = " ".join(f"word{i}" for i in range(60))  # 60 tokens: 3 s at DELAY, never reached
DELAY = 0.05


Managers = Callable[..., RunManager]


@pytest.fixture
async def managers(new_log: NewLog) -> AsyncIterator[Managers]:
    """`managers(recorder=None, log_options=None, **options)`: RunManagers on the backend
    under test (on Redis, logs of one deployment), all closed at the end."""
    made: list[RunManager] = []

    def make(
        recorder: Any = None, *, log_options: dict[str, float] | None = None, **options: Any
    ) -> RunManager:
        made.append(RunManager(new_log(**(log_options or {})), recorder, **options))
        return made[-1]

    yield make
    async with asyncio.timeout(10):  # hang guard
        for runs in made:
            await runs.aclose()


@pytest.fixture
def manager(managers: Managers) -> RunManager:
    return managers()


def ctx(model: Any, question: str = "What does the fox do?", **kwargs: Any) -> Context:
    return Context(question, model, GenerationParams(), **kwargs)


async def drain(runs: RunManager, run_id: str, after: int = 0, within: float = 3.0) -> list[Entry]:
    """Every entry after `after` until the log is closed; fails if it is not within `within`."""
    entries: list[Entry] = []
    try:
        async with asyncio.timeout(within):
            while True:
                batch = await runs.log.read(run_id, after, 1.0)
                entries += batch.entries
                if batch.entries:
                    after = batch.entries[-1][0]
                if batch.closed:
                    return entries
    except TimeoutError:
        types = [e.type for _, e in entries]
        raise AssertionError(f"log of {run_id} not closed after {within}s; got {types}") from None


async def until_deltas(runs: RunManager, run_id: str, n: int) -> int:
    """Wait until the log holds `n` deltas; return the seq read up to."""
    after, seen = 0, 0
    while seen < n:
        batch = await runs.log.read(run_id, after, 1.0)
        assert not batch.closed, f"run ended before {n} deltas"
        seen += sum(isinstance(e, Delta) for _, e in batch.entries)
        if batch.entries:
            after = batch.entries[-1][0]
    return after


def events(entries: list[Entry]) -> list[Event]:
    return [e for _, e in entries]


def types(entries: list[Entry]) -> list[str]:
    return [e.type for _, e in entries]


def only(entries: list[Entry], cls: type[Any]) -> Any:
    [event] = [e for _, e in entries if isinstance(e, cls)]
    return event


def delta_text(entries: list[Entry]) -> list[str]:
    return [e.text for _, e in entries if isinstance(e, Delta)]


class RecordingBackend:
    """A ModelBackend that answers "ok" and remembers what it was asked."""

    backend: ClassVar[str] = "recording"
    params_type: ClassVar[type[GenerationParams]] = GenerationParams

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []

    @property
    def model(self) -> str:
        return "recorder"

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncIterator[ModelDelta]:
        self.calls.append(list(messages))
        yield ModelDelta(text="ok")
        yield ModelDelta(usage=Usage(1, 1), finish_reason="stop")

    async def aclose(self) -> None:
        return None


async def start_chat(runs: RunManager, model: Any, **kwargs: Any) -> Run:
    return await runs.start("chat", get_pipeline("chat"), ctx(model, **kwargs))


# --- a chat run from start to end ----------------------------------------------------------


async def test_a_chat_run_logs_start_status_deltas_metadata_complete_with_gapless_seqs(
    manager: RunManager,
) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT))
        entries = await drain(manager, run.id)
        n = len(delta_text(entries))
        assert n == len(TEXT.split())
        assert types(entries) == ["start", "status", *["delta"] * n, "metadata", "complete"]
        assert [seq for seq, _ in entries] == list(range(1, len(entries) + 1))


async def test_the_start_event_describes_the_run(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT, model="fox-1"))
        entries = await drain(manager, run.id)
        start = entries[0][1]
        assert isinstance(start, Start)
        assert (start.run_id, start.pipeline, start.model) == (run.id, "chat", "fox-1")
        assert start.message_id == run.message_id == only(entries, Complete).message_id
        assert start.created_at.utcoffset() is not None


async def test_complete_text_is_the_concatenated_deltas_and_the_models_text(
    manager: RunManager,
) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT))
        entries = await drain(manager, run.id)
        complete = only(entries, Complete)
        assert "".join(delta_text(entries)) == complete.text == TEXT
        assert complete.finish_reason == "stop"
        assert run.status == "complete"


async def test_metadata_reports_usage_and_timings(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT, delay=0.002))
        entries = await drain(manager, run.id)
        metadata = only(entries, Metadata)
        assert metadata.model == "scripted"
        assert metadata.usage is not None
        assert metadata.usage.completion_tokens == len(delta_text(entries))
        assert metadata.usage.prompt_tokens > 0
        assert only(entries, Complete).usage == metadata.usage
        timings = metadata.timings
        assert timings is not None
        assert timings.ttft_ms is not None
        assert timings.total_ms is not None
        assert 0 <= timings.ttft_ms <= timings.total_ms


async def test_the_system_prompt_and_history_reach_the_model_before_the_question(
    manager: RunManager,
) -> None:
    async with asyncio.timeout(5):
        model = RecordingBackend()
        history = (Message("user", "Hi"), Message("assistant", "Hello!"))
        run = await start_chat(
            manager, model, question="Why?", system_prompt="Be terse.", history=history
        )
        entries = await drain(manager, run.id)
        assert model.calls == [[Message("system", "Be terse."), *history, Message("user", "Why?")]]
        assert only(entries, Complete).text == "ok"


async def test_without_a_system_prompt_no_system_message_is_sent(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        model = RecordingBackend()
        run = await start_chat(manager, model, question="Why?")
        await drain(manager, run.id)
        assert model.calls == [[Message("user", "Why?")]]


async def test_runs_are_independent(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        a = await start_chat(manager, ScriptedBackend("alpha beta", delay=0.005))
        b = await start_chat(manager, ScriptedBackend("gamma delta epsilon", delay=0.003))
        entries_a, entries_b = await asyncio.gather(drain(manager, a.id), drain(manager, b.id))
        assert only(entries_a, Complete).text == "alpha beta"
        assert only(entries_b, Complete).text == "gamma delta epsilon"
        assert a.id != b.id


# --- cancellation and failures -------------------------------------------------------------


async def test_cancel_stops_the_model_between_tokens(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        model = ScriptedBackend(LONG, delay=DELAY)
        run = await start_chat(manager, model)
        await until_deltas(manager, run.id, 2)
        assert manager.cancel(run.id) is True
        entries = await drain(manager, run.id)
        assert entries[-1][1] == Error("cancelled", "the run was cancelled")
        assert "complete" not in types(entries)
        produced = model.tokens_generated
        await asyncio.sleep(4 * DELAY)
        assert model.tokens_generated == produced
        assert produced < len(LONG.split())
        assert run.status == "cancelled"


async def test_cancel_of_a_finished_or_unknown_run_returns_false(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT))
        await drain(manager, run.id)
        assert manager.cancel(run.id) is False
        assert manager.cancel("run_nobody") is False
        assert run.status == "complete"


async def test_cancel_right_after_start_still_ends_the_log(manager: RunManager) -> None:
    # The stop button may be pressed before the run's task has had its first turn.
    async with asyncio.timeout(5):
        model = ScriptedBackend(LONG, delay=DELAY)
        run = await start_chat(manager, model)
        assert manager.cancel(run.id) is True
        entries = await drain(manager, run.id, within=1.0)
        assert entries[-1][1].type == "error"
        assert getattr(entries[-1][1], "code", None) == "cancelled"
        assert run.status == "cancelled"
        assert model.tokens_generated == 0


async def test_a_model_failure_ends_the_run_with_a_retryable_model_error(
    manager: RunManager,
) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT, fail_after=2))
        entries = await drain(manager, run.id)
        assert types(entries) == ["start", "status", "delta", "delta", "error"]
        assert "".join(delta_text(entries)) == "The quick"
        error = entries[-1][1]
        assert isinstance(error, Error)
        assert error.code == "model_error"
        assert error.retryable is True
        assert run.status == "error"


# --- custom pipelines ----------------------------------------------------------------------


async def test_a_pipeline_yielding_plain_strings_gets_deltas_and_a_complete(
    manager: RunManager,
) -> None:
    async def greeter(ctx: Context) -> AsyncIterator[Event | str]:
        yield Status("thinking")
        yield "Hello"
        yield ", "
        yield ctx.question

    async with asyncio.timeout(5):
        run = await manager.start("greeter", greeter, ctx(ScriptedBackend("unused"), "Ada"))
        entries = await drain(manager, run.id)
        assert types(entries) == [
            "start", "status", "delta", "delta", "delta", "metadata", "complete",
        ]  # fmt: skip
        assert events(entries)[2:5] == [Delta("Hello"), Delta(", "), Delta("Ada")]
        assert only(entries, Complete).text == "Hello, Ada"
        assert only(entries, Start).pipeline == "greeter"


async def test_a_pipeline_that_raises_gets_a_pipeline_error_without_its_details(
    manager: RunManager, caplog: pytest.LogCaptureFixture
) -> None:
    async def exploder(ctx: Context) -> AsyncIterator[Event | str]:
        yield "partial "
        raise RuntimeError("db password is hunter2")

    async with asyncio.timeout(5):
        run = await manager.start("exploder", exploder, ctx(ScriptedBackend("unused")))
        entries = await drain(manager, run.id)
        assert types(entries) == ["start", "delta", "error"]
        error = entries[-1][1]
        assert isinstance(error, Error)
        assert error.code == "pipeline_error"
        assert "exploder" in error.message
        assert "hunter2" not in error.message
        assert "RuntimeError" not in error.message
        assert "Traceback" not in error.message
        assert run.status == "error"
        # The details go to the server's log for the operator instead.
        logged = [r for r in caplog.records if r.name == "ssechat.runs" and r.exc_info]
        assert logged
        assert "hunter2" in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_a_pipeline_yielding_a_non_event_gets_a_pipeline_error_naming_it(
    manager: RunManager,
) -> None:
    async def counter(ctx: Context) -> AsyncIterator[Any]:
        yield "one"
        yield 2

    async with asyncio.timeout(5):
        run = await manager.start("counter", counter, ctx(ScriptedBackend("unused")))
        entries = await drain(manager, run.id)
        assert types(entries) == ["start", "delta", "error"]
        error = entries[-1][1]
        assert isinstance(error, Error)
        assert error.code == "pipeline_error"
        assert "counter" in error.message


@pytest.mark.parametrize(
    "owned",
    [Complete("msg_x", "forged"), Error("fake", "forged")],
    ids=lambda e: e.type,
)
async def test_a_pipeline_cannot_end_the_run_itself(manager: RunManager, owned: Event) -> None:
    async def forger(ctx: Context) -> AsyncIterator[Event | str]:
        yield owned

    async with asyncio.timeout(5):
        run = await manager.start("forger", forger, ctx(ScriptedBackend("unused")))
        entries = await drain(manager, run.id)
        assert types(entries) == ["start", "error"]
        assert getattr(entries[-1][1], "code", None) == "pipeline_error"


async def test_a_pipelines_quality_metadata_is_merged_into_the_runs_single_metadata(
    manager: RunManager,
) -> None:
    async def judged(ctx: Context) -> AsyncIterator[Event | str]:
        async for delta in ctx.model.stream([Message("user", ctx.question)], ctx.params):
            if delta.text:
                yield delta.text
        yield Metadata(ctx.model.model, quality={"faithfulness": 0.75, "flags": ["short"]})

    async with asyncio.timeout(5):
        run = await manager.start("judged", judged, ctx(ScriptedBackend(TEXT)))
        entries = await drain(manager, run.id)
        assert types(entries).count("metadata") == 1
        assert types(entries)[-2:] == ["metadata", "complete"]
        metadata = only(entries, Metadata)
        assert metadata.quality == {"faithfulness": 0.75, "flags": ["short"]}
        assert metadata.usage is not None
        assert metadata.usage.completion_tokens == len(TEXT.split())
        assert metadata.timings is not None


# --- subscriptions -------------------------------------------------------------------------


async def test_subscribe_to_an_unknown_run_raises_run_not_found(manager: RunManager) -> None:
    async with asyncio.timeout(5):
        with pytest.raises(RunNotFound):
            await manager.subscribe("run_nobody", 0, CanonicalRenderer())


async def read_subscription(sub: Any) -> bytes:
    out = b""
    while True:
        data, closed = await sub.next(1.0)
        out += data
        if closed:
            return out


async def test_a_subscription_yields_canonical_bytes_of_every_event_with_seq_ids(
    manager: RunManager,
) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT, delay=0.002))
        sub = await manager.subscribe(run.id, 0, CanonicalRenderer())
        body = await read_subscription(sub)
        sub.close()
        entries = await drain(manager, run.id)
        messages = decode([body])
        assert [m.id for m in messages] == [str(seq) for seq, _ in entries]
        assert [loads(m.event or "", m.data) for m in messages] == events(entries)
        renderer = CanonicalRenderer()
        assert body == b"".join(renderer.render(seq, e) for seq, e in entries)


@pytest.mark.parametrize("after", [1, 4])
async def test_a_subscription_after_k_yields_only_later_events(
    manager: RunManager, after: int
) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT, delay=0.002))
        everything = await drain(manager, run.id)
        sub = await manager.subscribe(run.id, after, CanonicalRenderer())
        body = await read_subscription(sub)
        sub.close()
        messages = decode([body])
        assert [int(m.id or 0) for m in messages] == [s for s, _ in everything if s > after]
        assert [loads(m.event or "", m.data) for m in messages] == events(everything)[after:]


async def test_resuming_a_live_run_misses_nothing_and_repeats_nothing(
    manager: RunManager,
) -> None:
    async with asyncio.timeout(5):
        run = await start_chat(manager, ScriptedBackend(TEXT, delay=0.01))
        first = await manager.subscribe(run.id, 0, CanonicalRenderer())
        seen = decode([(await first.next(1.0))[0]])
        while not any(m.event == "delta" for m in seen):
            seen += decode([(await first.next(1.0))[0]])
        first.close()
        second = await manager.subscribe(run.id, int(seen[-1].id or 0), CanonicalRenderer())
        rest = decode([await read_subscription(second)])
        second.close()
        whole = seen + rest
        assert [int(m.id or 0) for m in whole] == list(range(1, len(whole) + 1))
        deltas = [loads("delta", m.data) for m in whole if m.event == "delta"]
        assert "".join(d.text for d in deltas if isinstance(d, Delta)) == TEXT
        assert whole[-1].event == "complete"


# --- nobody listening: the grace period ----------------------------------------------------


async def test_a_run_nobody_watches_any_more_is_interrupted_after_the_grace_period(
    managers: Managers,
) -> None:
    runs = managers(grace_period=0.1)
    async with asyncio.timeout(5):
        model = ScriptedBackend(LONG, delay=DELAY)
        run = await start_chat(runs, model)
        sub = await runs.subscribe(run.id, 0, CanonicalRenderer())
        await until_deltas(runs, run.id, 1)
        loop = asyncio.get_running_loop()
        left = loop.time()
        sub.close()
        entries = await drain(runs, run.id)
        waited = loop.time() - left
        assert entries[-1][1] == Error(
            "interrupted", "no client was listening; the run was stopped"
        )
        assert 0.09 <= waited < 1.0
        assert run.status == "interrupted"
        produced = model.tokens_generated
        await asyncio.sleep(4 * DELAY)
        assert model.tokens_generated == produced


async def test_resubscribing_within_the_grace_period_keeps_the_run_alive(
    managers: Managers,
) -> None:
    runs = managers(grace_period=0.1)
    async with asyncio.timeout(5):
        text = " ".join(f"w{i}" for i in range(12))  # about 0.6 s at DELAY
        run = await start_chat(runs, ScriptedBackend(text, delay=DELAY))
        first = await runs.subscribe(run.id, 0, CanonicalRenderer())
        await until_deltas(runs, run.id, 1)
        first.close()
        await asyncio.sleep(0.05)
        second = await runs.subscribe(run.id, 0, CanonicalRenderer())
        await asyncio.sleep(0.2)  # well past the first grace deadline
        assert run.status == "running"
        entries = await drain(runs, run.id)
        second.close()
        assert only(entries, Complete).text == text
        assert run.status == "complete"


async def test_the_run_lives_while_any_subscriber_remains(managers: Managers) -> None:
    runs = managers(grace_period=0.05)
    async with asyncio.timeout(5):
        text = " ".join(f"w{i}" for i in range(8))
        run = await start_chat(runs, ScriptedBackend(text, delay=DELAY))
        one = await runs.subscribe(run.id, 0, CanonicalRenderer())
        two = await runs.subscribe(run.id, 0, CanonicalRenderer())
        await until_deltas(runs, run.id, 1)
        one.close()
        entries = await drain(runs, run.id)
        two.close()
        assert only(entries, Complete).text == text


# In memory the stop is immediate; a shared log first asks whether another replica follows.
@pytest.mark.parametrize("new_log", ["memory"], indirect=True)
async def test_with_no_grace_period_the_run_stops_as_soon_as_the_last_subscriber_leaves(
    managers: Managers,
) -> None:
    runs = managers(grace_period=0)
    async with asyncio.timeout(5):
        model = ScriptedBackend(LONG, delay=DELAY)
        run = await start_chat(runs, model)
        sub = await runs.subscribe(run.id, 0, CanonicalRenderer())
        await until_deltas(runs, run.id, 1)
        sub.close()
        produced = model.tokens_generated  # not one more token after this
        entries = await drain(runs, run.id)
        assert getattr(entries[-1][1], "code", None) == "interrupted"
        assert model.tokens_generated == produced
        assert run.status == "interrupted"


async def test_a_run_nobody_ever_subscribed_to_is_not_interrupted(managers: Managers) -> None:
    runs = managers(grace_period=0)
    async with asyncio.timeout(5):
        run = await start_chat(runs, ScriptedBackend(TEXT, delay=0.005))
        entries = await drain(runs, run.id)
        assert only(entries, Complete).text == TEXT


# --- shutdown ------------------------------------------------------------------------------


async def test_manager_aclose_stops_running_runs_as_a_retryable_shutdown(
    managers: Managers,
) -> None:
    runs = managers()
    async with asyncio.timeout(5):
        model = ScriptedBackend(LONG, delay=DELAY)
        run = await start_chat(runs, model)
        other = await start_chat(runs, ScriptedBackend(LONG, delay=DELAY))
        await until_deltas(runs, run.id, 1)
        await until_deltas(runs, other.id, 1)
        await runs.aclose()
        for r in (run, other):
            entries = await drain(runs, r.id)
            assert getattr(entries[-1][1], "code", None) == "shutdown"
            assert getattr(entries[-1][1], "retryable", None) is True
            assert r.status == "interrupted"
        produced = model.tokens_generated
        await asyncio.sleep(4 * DELAY)
        assert model.tokens_generated == produced


async def test_manager_aclose_right_after_start_still_records_the_run_as_interrupted(
    managers: Managers,
) -> None:
    runs = managers()
    async with asyncio.timeout(5):
        run = await start_chat(runs, ScriptedBackend(LONG, delay=DELAY))
        await runs.aclose()
        assert run.status == "interrupted"
        entries = await drain(runs, run.id, within=1.0)
        assert getattr(entries[-1][1], "code", None) == "shutdown"


# --- several replicas on one Redis ---------------------------------------------------------
#
# Each `RunManager` on a `RedisEventLog` of its own, all on one server and key prefix, stands
# for one replica.

redis_only = pytest.mark.parametrize("new_log", ["redis"], indirect=True)
BEAT = 0.05  # heartbeat interval
OWNER_TTL = 0.3  # a replica that has not renewed its marks for this long is gone
SLOW = " ".join(f"w{i}" for i in range(200))  # 10 s at DELAY: never reached


@dataclass
class Answer:
    run_id: str
    status: str = "streaming"
    content: str = ""
    error: Any = None


class MemoryRecorder:
    """The store's part that runs use, in memory: answers by message id."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}

    def expect(self, run_id: str, message_id: str) -> None:
        """An answer the API has stored as `streaming` before starting its run."""
        self.answers[message_id] = Answer(run_id)

    async def append_texts(self, pieces: Mapping[str, str]) -> None:
        for message_id, piece in pieces.items():
            if self.answers[message_id].status == "streaming":
                self.answers[message_id].content += piece

    async def finish(
        self,
        message_id: str,
        *,
        status: str,
        content: str,
        only_if_streaming: bool = False,
        **fields: Any,
    ) -> None:
        answer = self.answers[message_id]
        if not only_if_streaming or answer.status == "streaming":
            answer.status, answer.content, answer.error = status, content, fields.get("error")

    async def streaming_runs(self, older_than: float) -> list[str]:
        return [a.run_id for a in self.answers.values() if a.status == "streaming"]

    async def interrupt_streaming(self, run_ids: Collection[str] | None = None) -> int:
        found = [
            a
            for a in self.answers.values()
            if a.status == "streaming" and (run_ids is None or a.run_id in run_ids)
        ]
        for answer in found:
            answer.status = "interrupted"
        return len(found)


@pytest.fixture
def replica(managers: Managers) -> Managers:
    """`replica(recorder, **options)`: a RunManager standing for one replica of the test's
    deployment (a short heartbeat, and marks that lapse soon after it stops)."""
    return partial(managers, log_options={"owner_ttl": OWNER_TTL}, heartbeat_interval=BEAT)


async def start_answer(
    runs: RunManager, recorder: MemoryRecorder, model: Any, run_id: str = "run_x"
) -> Run:
    """Start a chat run whose answer the recorder holds as `streaming`, as the API does."""
    recorder.expect(run_id, f"msg_{run_id}")
    return await runs.start(
        "chat", get_pipeline("chat"), ctx(model), run_id=run_id, message_id=f"msg_{run_id}"
    )


async def until_followed_elsewhere(runs: RunManager, run_id: str) -> None:
    assert runs.shared is not None
    # Polling: the mark is on the server, there is no event to wait on.
    while not await runs.shared.followed_elsewhere(run_id):  # noqa: ASYNC110
        await asyncio.sleep(BEAT)


@redis_only
async def test_a_run_on_one_replica_is_followed_through_another_event_for_event(
    replica: Callable[..., RunManager],
) -> None:
    async with asyncio.timeout(10):
        a, b = replica(), replica()
        run = await start_chat(a, ScriptedBackend(TEXT, delay=0.01))
        sub = await b.subscribe(run.id, 0, CanonicalRenderer())
        body = await read_subscription(sub)
        sub.close()
        messages = decode([body])
        entries = await drain(a, run.id)
        assert [int(m.id or 0) for m in messages] == list(range(1, len(entries) + 1))
        assert [loads(m.event or "", m.data) for m in messages] == events(entries)
        assert only(entries, Complete).text == TEXT


@redis_only
async def test_a_cancel_requested_through_another_replica_stops_the_run(
    replica: Callable[..., RunManager],
) -> None:
    async with asyncio.timeout(10):
        recorder = MemoryRecorder()
        a, b = replica(recorder), replica(recorder)
        model = ScriptedBackend(SLOW, delay=DELAY)
        run = await start_answer(a, recorder, model)
        await until_deltas(b, run.id, 2)
        assert b.cancel(run.id) is False  # not running on b itself
        assert await b.request_cancel(run.id) is True
        entries = await drain(b, run.id)
        assert entries[-1][1] == Error("cancelled", "the run was cancelled")
        assert "complete" not in types(entries)
        assert run.status == "cancelled"
        answer = recorder.answers[run.message_id]
        assert answer.status == "cancelled"
        # Even when the cancel lands inside a Redis append: saved is what was streamed.
        assert answer.content == "".join(delta_text(entries))
        produced = model.tokens_generated
        await asyncio.sleep(4 * DELAY)
        assert model.tokens_generated == produced
        assert await b.request_cancel(run.id) is False  # it has ended


@redis_only
async def test_a_subscriber_on_another_replica_keeps_the_run_alive_past_the_grace_period(
    replica: Callable[..., RunManager],
) -> None:
    async with asyncio.timeout(10):
        a, b = replica(grace_period=0.1), replica()
        run = await start_chat(a, ScriptedBackend(SLOW, delay=DELAY))
        elsewhere = await b.subscribe(run.id, 0, CanonicalRenderer())
        await until_followed_elsewhere(a, run.id)
        here = await a.subscribe(run.id, 0, CanonicalRenderer())
        here.close()  # a has no subscriber left: its grace period starts
        await asyncio.sleep(0.6)  # six grace periods, twice OWNER_TTL
        assert run.status == "running"
        elsewhere.close()  # b's mark expires, and the next grace period ends the run
        entries = await drain(a, run.id)
        assert entries[-1][1] == Error(
            "interrupted", "no client was listening; the run was stopped"
        )
        assert run.status == "interrupted"


OWNER = """
import asyncio, sys
from ssechat.eventlog.redis import RedisEventLog
from ssechat.models import GenerationParams
from ssechat.models.scripted import ScriptedBackend
from ssechat.pipelines import Context, get_pipeline
from ssechat.runs import RunManager

async def main(url, prefix, run_id, message_id, text):
    log = RedisEventLog(url, prefix=prefix, owner_ttl=float(sys.argv[6]))
    runs = RunManager(log, heartbeat_interval=float(sys.argv[7]))
    ctx = Context("What does the fox do?", ScriptedBackend(text, delay=0.05), GenerationParams())
    await runs.start("chat", get_pipeline("chat"), ctx, run_id=run_id, message_id=message_id)
    print("started", flush=True)
    await asyncio.sleep(60)

asyncio.run(main(*sys.argv[1:6]))
"""


@pytest.mark.parametrize("new_log", ["redis"], indirect=True)  # only for redis_url's skip
async def test_when_the_owning_replica_dies_followers_get_a_retryable_interrupted_and_it_is_saved(
    new_log: NewLog, redis_url: str
) -> None:
    # The owner is a real process, killed with SIGKILL: it writes nothing on its way out.
    prefix = f"kill{uuid.uuid4().hex[:8]}:"
    run_id, message_id = "run_killed", "msg_killed"
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER, redis_url, prefix, run_id, message_id, SLOW,
        str(OWNER_TTL), str(BEAT), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    recorder = MemoryRecorder()
    recorder.expect(run_id, message_id)
    b = RunManager(
        RedisEventLog(redis_url, prefix=prefix, owner_ttl=OWNER_TTL),
        recorder,
        heartbeat_interval=BEAT,
    )
    try:
        async with asyncio.timeout(30):  # hang guard (the owner process starts in ~1 s)
            assert owner.stdout is not None
            assert await owner.stdout.readline() == b"started\n"
            sub = await b.subscribe(run_id, 0, CanonicalRenderer())
            seen: list[Any] = []
            while sum(m.event == "delta" for m in seen) < 3:
                seen += decode([(await sub.next(1.0))[0]])
            owner.kill()
            await owner.wait()
            seen += decode([await read_subscription(sub)])
            sub.close()
            # The log is ended before the answer is saved (see _abandon): wait for the save.
            while recorder.answers[message_id].status == "streaming":  # noqa: ASYNC110
                await asyncio.sleep(BEAT)
        ends = [loads(m.event or "", m.data) for m in seen if m.event in ("error", "complete")]
        assert ends == [LOST.event]
        assert LOST.event.code == "interrupted"
        assert LOST.event.retryable is True
        assert [int(m.id or 0) for m in seen] == list(range(1, len(seen) + 1))
        streamed = "".join(
            d.text for m in seen if m.event == "delta" for d in [loads("delta", m.data)]
            if isinstance(d, Delta)
        )  # fmt: skip
        answer = recorder.answers[message_id]
        assert answer.status == "interrupted"
        assert answer.content == streamed
        assert answer.error["code"] == "interrupted"
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()
        await b.aclose()
        await b.log.aclose()


@redis_only
async def test_recover_interrupts_only_the_streaming_answers_whose_run_has_no_owner(
    new_log: NewLog, replica: Callable[..., RunManager]
) -> None:
    async with asyncio.timeout(10):
        recorder = MemoryRecorder()
        a, b = replica(recorder), replica(recorder)
        live = await start_answer(a, recorder, ScriptedBackend(SLOW, delay=DELAY), "run_live")
        # A run whose replica went away mid-answer: its log is there, nobody renews it.
        gone = new_log(owner_ttl=OWNER_TTL)
        recorder.expect("run_orphan", "msg_orphan")
        await gone.append(
            "run_orphan",
            Start("run_orphan", "conv_o", "msg_orphan", "chat", "scripted", datetime.now(UTC)),
        )
        await gone.append("run_orphan", Delta("half an"))
        await gone.append("run_orphan", Delta(" answer"))
        # An answer whose run's log is gone altogether (retention, a Redis restart).
        recorder.expect("run_vanished", "msg_vanished")
        assert b.shared is not None
        while not await b.shared.orphans(["run_orphan"]):  # noqa: ASYNC110
            await asyncio.sleep(BEAT)

        assert await b.recover() == 2

        assert recorder.answers["msg_orphan"].status == "interrupted"
        assert recorder.answers["msg_orphan"].content == "half an answer"
        assert recorder.answers["msg_vanished"].status == "interrupted"
        assert recorder.answers[live.message_id].status == "streaming"
        assert live.status == "running"
        orphan = await drain(b, "run_orphan")
        assert events(orphan)[1:] == [Delta("half an"), Delta(" answer"), LOST.event]
        assert await b.recover() == 0  # nothing left to do


async def test_while_a_run_streams_its_stored_answer_is_always_the_text_so_far(
    managers: Managers,
) -> None:
    # Saved many times over (and its saved pieces merged into one each time): the stored
    # answer only ever grows by what came since, and ends as exactly what was streamed.
    async with asyncio.timeout(10):
        recorder = MemoryRecorder()
        runs = managers(recorder, save_interval=0.02)
        text = " ".join(f"t{i}" for i in range(40))
        run = await start_answer(runs, recorder, ScriptedBackend(text, delay=0.005))
        answer = recorder.answers[run.message_id]
        seen: list[str] = []
        while answer.status == "streaming":
            if not seen or seen[-1] != answer.content:
                seen.append(answer.content)
            await asyncio.sleep(0.01)
        assert len(seen) > 3  # it was saved while it streamed, several times
        assert all(text.startswith(content) for content in seen)
        assert (answer.status, answer.content) == ("complete", text)
