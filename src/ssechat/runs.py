"""Runs: a chat request starts a background task whose events go to the event log.

HTTP responses never drive generation; they subscribe to a run's log from an offset. So a
client that drops and comes back with `Last-Event-ID` misses nothing, a second tab can join,
and the stop button cancels the run, not a socket. A run nobody watches any more is
cancelled after a grace period, so an abandoned answer does not keep the model busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ssechat.dialects import Renderer
from ssechat.errors import PipelineError, SsechatError
from ssechat.eventlog import Batch, EventLog
from ssechat.events import Complete, Delta, Error, Event, Metadata, Start, Timings, Usage
from ssechat.models import GenerationParams, Message, ModelBackend, ModelDelta
from ssechat.pipelines import Context, Pipeline

logger = logging.getLogger("ssechat.runs")

# How a run ended, as saved with its message.
COMPLETE, CANCELLED, INTERRUPTED, ERROR = "complete", "cancelled", "interrupted", "error"
_CANCEL_EVENTS = {
    CANCELLED: Error("cancelled", "the run was cancelled"),
    INTERRUPTED: Error("interrupted", "no client was listening; the run was stopped"),
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(slots=True)
class Run:
    id: str
    pipeline: str
    model: str
    conversation_id: str
    message_id: str
    user: str
    created_at: datetime
    task: asyncio.Task[None] | None = None
    status: str = "running"
    subscribers: int = 0
    cancel_reason: str = CANCELLED
    grace: asyncio.TimerHandle | None = None
    text: list[str] = field(default_factory=list)


class _Metered:
    """The run's view of the model: passes the stream through, noting usage and finish."""

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.params_type = inner.params_type
        self.usage: Usage | None = None  # None: the backend reported none (stays unknown)
        self.finish_reason: str | None = None

    @property
    def model(self) -> str:
        return self.inner.model

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        # aclosing: when the pipeline stops reading, the backend's stream is closed at once,
        # which is what stops the model between tokens.
        async with aclosing(self.inner.stream(messages, params)) as deltas:
            async for delta in deltas:
                if delta.usage:  # summed: a pipeline may call the model more than once
                    before = self.usage or Usage()
                    self.usage = Usage(
                        before.prompt_tokens + delta.usage.prompt_tokens,
                        before.completion_tokens + delta.usage.completion_tokens,
                    )
                self.finish_reason = delta.finish_reason or self.finish_reason
                yield delta

    async def aclose(self) -> None:
        return None


class RunManager:
    def __init__(self, log: EventLog, *, grace_period: float = 30.0) -> None:
        self.log = log
        self.grace_period = grace_period
        self._runs: dict[str, Run] = {}  # runs this process is executing

    async def start(
        self, name: str, pipeline: Pipeline, ctx: Context, *, conversation_id: str = ""
    ) -> Run:
        """Start `pipeline` on `ctx` as a background run; return once its `start` is logged."""
        run = Run(
            id=new_id("run"),
            pipeline=name,
            model=ctx.model.model,
            conversation_id=conversation_id or new_id("conv"),
            message_id=new_id("msg"),
            user=ctx.user,
            created_at=datetime.now(UTC),
        )
        ctx = replace(ctx, run_id=run.id, conversation_id=run.conversation_id)
        await self.log.append(
            run.id,
            Start(run.id, run.conversation_id, run.message_id, name, run.model, run.created_at),
        )
        self._runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run, pipeline, ctx), name=run.id)
        return run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def cancel(self, run_id: str, reason: str = CANCELLED) -> bool:
        """Stop a running run; False if it is not running here."""
        run = self._runs.get(run_id)
        if run is None or run.task is None or run.task.done():
            return False
        run.cancel_reason = reason
        run.task.cancel()
        return True

    async def subscribe(self, run_id: str, after: int, renderer: Renderer) -> Subscription:
        """A cursor into the run's log after seq `after`; `RunNotFound` for an unknown run."""
        first = await self.log.read(run_id, after, 0)  # raises before any response starts
        run = self._runs.get(run_id)
        if run is not None:
            run.subscribers += 1
            if run.grace is not None:
                run.grace.cancel()
                run.grace = None
        return Subscription(self, run_id, after, first, renderer)

    def _unsubscribe(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is None:
            return
        run.subscribers -= 1
        if run.subscribers == 0 and run.status == "running":
            if self.grace_period <= 0:
                self.cancel(run_id, INTERRUPTED)
            else:
                loop = asyncio.get_running_loop()
                run.grace = loop.call_later(self.grace_period, self.cancel, run_id, INTERRUPTED)

    async def aclose(self) -> None:
        """Cancel every run and wait for each to record how it ended."""
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        for run_id in list(self._runs):
            self.cancel(run_id, INTERRUPTED)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _execute(self, run: Run, pipeline: Pipeline, ctx: Context) -> None:
        model = _Metered(ctx.model)
        ctx = replace(ctx, model=model)
        log, started = self.log, time.perf_counter()
        ttft: float | None = None
        quality = None
        try:
            async with aclosing(pipeline(ctx)) as items:
                async for item in items:
                    event = _as_event(item, run.pipeline)
                    if isinstance(event, Delta):
                        if ttft is None:
                            ttft = (time.perf_counter() - started) * 1000
                        run.text.append(event.text)
                    elif isinstance(event, Metadata):
                        quality = event.quality  # merged into the run's own metadata below
                        continue
                    await log.append(run.id, event)
            total = (time.perf_counter() - started) * 1000
            await log.append(
                run.id, Metadata(run.model, model.usage, Timings(ttft, total), quality)
            )
            end: Event = Complete(
                run.message_id, "".join(run.text), model.finish_reason, usage=model.usage
            )
            run.status = COMPLETE
        except asyncio.CancelledError:
            run.status = run.cancel_reason
            end = _CANCEL_EVENTS[run.cancel_reason]
        except SsechatError as exc:
            run.status = ERROR
            end = Error(exc.code, exc.message, exc.retryable)
        except Exception:
            logger.exception("run %s: pipeline %r failed", run.id, run.pipeline)
            run.status = ERROR
            end = Error("pipeline_error", f"the {run.pipeline!r} pipeline failed")
        finally:
            if run.grace is not None:
                run.grace.cancel()
        await log.append(run.id, end)
        await log.close(run.id)
        self._runs.pop(run.id, None)


def _as_event(item: object, pipeline: str) -> Event:
    if isinstance(item, str):
        return Delta(item)
    if isinstance(item, Start | Complete | Error) or not isinstance(item, Event):
        raise PipelineError(
            f"pipeline {pipeline!r} yielded {type(item).__name__}; "
            "expected answer text (str) or a canonical event other than start/complete/error"
        )
    return item


class Subscription:
    """One response's cursor into a run's log, rendered in its dialect."""

    def __init__(
        self, runs: RunManager, run_id: str, after: int, first: Batch, renderer: Renderer
    ) -> None:
        self._runs = runs
        self.run_id = run_id
        self.after = after
        self._pending: Batch | None = first  # read while subscribing; sent first
        self._render = renderer.render

    async def next(self, timeout: float) -> tuple[bytes, bool]:
        batch, self._pending = self._pending, None
        if batch is None:
            batch = await self._runs.log.read(self.run_id, self.after, timeout)
        if batch.entries:
            self.after = batch.entries[-1][0]
        return b"".join([self._render(seq, event) for seq, event in batch.entries]), batch.closed

    async def aclose(self) -> None:
        self._runs._unsubscribe(self.run_id)
