"""Runs: a chat request starts a background task whose events go to the event log.

HTTP responses never drive generation; they subscribe to a run's log from an offset. So a
client that drops and comes back with `Last-Event-ID` misses nothing, a second tab can join,
and the stop button cancels the run, not a socket. A run nobody watches any more is
cancelled after a grace period, so an abandoned answer does not keep the model busy.

What a run generated is saved while it streams (every `save_interval` seconds) and, in a
`finally`, with how it ended — whatever the ending: complete, stopped, failed or shut down.

On a log shared by several replicas (`SharedEventLog`) a run belongs to the replica that
generates it, and a heartbeat tells the others it is still there: they forward cancel
requests through the log, count their subscribers into the grace period, and end a run whose
replica went away as `interrupted` (retryable) for its followers and in the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Collection, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from ssechat.dialects import Renderer, render_items, text_renderer
from ssechat.errors import PipelineError, SsechatError
from ssechat.eventlog import (
    Batch,
    EventLog,
    EventLogUnavailable,
    Item,
    LocalEventLog,
    LogEnded,
    SharedEventLog,
)
from ssechat.events import (
    Complete,
    Csv,
    Delta,
    Error,
    Event,
    Metadata,
    Source,
    Sources,
    Sql,
    Start,
    Table,
    Timings,
    Usage,
)
from ssechat.ids import new_id
from ssechat.metrics import Metrics
from ssechat.models import GenerationParams, Message, ModelBackend, ModelDelta
from ssechat.pipelines import Context, Pipeline

logger = logging.getLogger("ssechat.runs")


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why a run was stopped early: the status its answer is saved with, and the event its
    subscribers get."""

    status: str
    event: Error


CANCELLED = StopReason("cancelled", Error("cancelled", "the run was cancelled"))
INTERRUPTED = StopReason(
    "interrupted", Error("interrupted", "no client was listening; the run was stopped")
)
SHUTDOWN = StopReason(
    "interrupted", Error("shutdown", "the server is shutting down; ask again", retryable=True)
)
LOST = StopReason(
    "interrupted",
    Error("interrupted", "the server generating this answer went away; ask again", True),
)
# A stored answer younger than this may belong to a run still being started: not an orphan.
STARTING_S = 10.0
SAVE_SLICE = 100  # runs whose progress one transaction saves
METRICS_STEP = 256  # events a subscription sends before it adds them to `events_sent`
SWEEP_S = 30.0  # how often a replica looks for answers that a vanished replica left open


class Recorder(Protocol):
    """Where answers are saved (the store)."""

    async def append_texts(self, pieces: Mapping[str, str]) -> None:
        """Add to answers still streaming the text that came since, by message id."""
        ...

    async def finish(
        self,
        message_id: str,
        *,
        status: str,
        content: str,
        only_if_streaming: bool = False,
        **fields: Any,
    ) -> None: ...

    async def streaming_runs(self, older_than: float) -> list[str]: ...

    async def interrupt_streaming(self, run_ids: Collection[str] | None = None) -> int: ...


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
    stop_reason: StopReason = CANCELLED
    grace: asyncio.TimerHandle | None = None
    text: list[str] = field(default_factory=list)
    saved: int = 0  # pieces of `text` saved so far
    usage: Usage | None = None
    sources: tuple[Source, ...] = ()
    sql: Sql | None = None
    table: Table | None = None
    csv: Csv | None = None
    error: Error | None = None

    # What the `complete` event and the stored message both name of the answer's SQL and CSV.
    @property
    def sql_text(self) -> str | None:
        return self.sql.sql if self.sql else None

    @property
    def csv_url(self) -> str | None:
        return self.csv.url if self.csv else None


class _Metered:
    """The run's view of the model: passes the stream through, noting usage and finish."""

    __slots__ = ("backend", "finish_reason", "inner", "params_type", "usage")

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
    def __init__(
        self,
        log: EventLog,
        recorder: Recorder | None = None,
        *,
        grace_period: float = 30.0,
        save_interval: float = 1.0,
        metrics: Metrics | None = None,
        retention: float = 300.0,
        heartbeat_interval: float = 0.5,
    ) -> None:
        self.log = log
        self.shared = log if isinstance(log, SharedEventLog) else None
        self.local = log if isinstance(log, LocalEventLog) else None
        self.heartbeat_interval = heartbeat_interval
        self.recorder = recorder
        self.metrics = metrics or Metrics()
        self.grace_period = grace_period
        self.save_interval = save_interval
        self.retention = retention
        self.accepting = True  # False once draining for shutdown
        self._runs: dict[str, Run] = {}  # runs this process is executing
        self._ended: dict[str, str] = {}  # the owners of runs it ended < `retention` s ago
        self._followers: dict[str, int] = {}  # subscribers in this process, by run
        self._heartbeat: asyncio.Task[None] | None = None
        self._saver: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[Any]] = set()  # what the heartbeat started

    async def start(
        self,
        name: str,
        pipeline: Pipeline,
        ctx: Context,
        *,
        run_id: str = "",
        conversation_id: str = "",
        message_id: str = "",
    ) -> Run:
        """Start `pipeline` on `ctx` as a background run; return once its `start` is logged."""
        run = Run(
            id=run_id or new_id("run"),
            pipeline=name,
            model=ctx.model.model,
            conversation_id=conversation_id or new_id("conv"),
            message_id=message_id or new_id("msg"),
            user=ctx.user,
            created_at=datetime.now(UTC),
        )
        ctx = replace(ctx, run_id=run.id, conversation_id=run.conversation_id)
        try:
            await self.log.append(
                run.id,
                Start(run.id, run.conversation_id, run.message_id, name, run.model, run.created_at),
            )
        except EventLogUnavailable as exc:  # the caller's 503; the stored turn must not dangle
            run.status, run.error = "error", Error(exc.code, exc.message, exc.retryable)
            await self._record(run)
            raise
        self._ensure_heartbeat()
        if self.recorder is not None and self._saver is None:
            self._saver = asyncio.create_task(self._save_progress(), name="ssechat-saver")
        self._runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run, pipeline, ctx), name=run.id)
        # Let the task reach its `try`: cancelled before its first step, it would end without
        # logging how, and its subscribers would wait forever.
        await asyncio.sleep(0)
        return run

    def owner(self, run_id: str) -> str | None:
        """The user whose run this process is executing, or ended less than `retention`
        seconds ago (as long as its events stay replayable: a resume needs no database to
        learn whose run it is); None for any other run."""
        run = self._runs.get(run_id)
        return run.user if run is not None else self._ended.get(run_id)

    def cancel(self, run_id: str, reason: StopReason = CANCELLED) -> bool:
        """Stop a running run; False if it is not running here."""
        run = self._runs.get(run_id)
        if run is None or run.task is None or run.task.done():
            return False
        run.stop_reason = reason
        run.task.cancel()
        return True

    async def request_cancel(self, run_id: str) -> bool:
        """Stop a run wherever it runs: here at once, on another replica through the log (it
        stops within a heartbeat). False if the run is not running."""
        if self.cancel(run_id):
            return True
        return self.shared is not None and await self.shared.request_cancel(run_id)

    async def subscribe(self, run_id: str, after: int, renderer: Renderer) -> Subscription:
        """A cursor into the run's log after seq `after`; `RunNotFound` for an unknown run."""
        first = await self.log.read(run_id, after, 0)  # raises before any response starts
        self.metrics.active_subscribers.inc()
        self._followers[run_id] = self._followers.get(run_id, 0) + 1
        self._ensure_heartbeat()
        run = self._runs.get(run_id)
        if run is not None and run.grace is not None:
            run.grace.cancel()
            run.grace = None
        return Subscription(self, run_id, after, first, renderer)

    def _unsubscribe(self, run_id: str) -> None:
        self.metrics.active_subscribers.dec()
        left = self._followers[run_id] - 1
        if left:
            self._followers[run_id] = left
            return
        del self._followers[run_id]
        run = self._runs.get(run_id)
        if run is not None and run.status == "running":
            if self.grace_period <= 0 and self.shared is None:
                self.cancel(run_id, INTERRUPTED)
            else:
                loop = asyncio.get_running_loop()
                run.grace = loop.call_later(self.grace_period, self._grace_over, run)

    def _grace_over(self, run: Run) -> None:
        run.grace = None
        if self.shared is None:
            self.cancel(run.id, INTERRUPTED)
        else:
            self._chore(self._stop_if_unwatched(run))

    async def _stop_if_unwatched(self, run: Run) -> None:
        """A replica's subscribers are invisible to the others but for their marks: wait
        while another replica renews one (or while the log cannot say)."""
        assert self.shared is not None
        try:
            watched = await self.shared.followed_elsewhere(run.id)
        except EventLogUnavailable:
            watched = True
        if run.id in self._followers or run.grace is not None or run.status != "running":
            return
        if watched:
            loop = asyncio.get_running_loop()
            run.grace = loop.call_later(self.grace_period, self._grace_over, run)
        else:
            self.cancel(run.id, INTERRUPTED)

    async def drain(self, timeout: float) -> None:
        """Shutdown: take no new runs, give running ones `timeout` seconds to finish, then
        stop the rest (saved `interrupted`, subscribers told `shutdown`, retryable)."""
        self.accepting = False
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        if tasks and timeout > 0:
            await asyncio.wait(tasks, timeout=timeout)
        for run_id in list(self._runs):
            self.cancel(run_id, SHUTDOWN)
        await asyncio.gather(*tasks, return_exceptions=True)
        # Only now: the heartbeat kept this replica's marks alive while the runs finished.
        background = [*self._chores, *(t for t in (self._heartbeat, self._saver) if t)]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self._heartbeat = self._saver = None

    async def aclose(self) -> None:
        """Stop every run at once, as at shutdown."""
        await self.drain(0)

    async def recover(self) -> int:
        """Answers left `streaming` by a process that is gone become `interrupted`: with a
        log of this process alone (at start-up), all of them; with a shared log, those whose
        run no replica generates any more. Returns how many."""
        if self.recorder is None:
            return 0
        if self.shared is None:
            return await self.recorder.interrupt_streaming()
        self._ensure_heartbeat()  # it repeats this sweep every SWEEP_S
        found = await self.shared.orphans(await self.recorder.streaming_runs(STARTING_S))
        # A log that retention (or a Redis restart) dropped has nothing left to replay.
        gone = [run_id for run_id, exists in found.items() if not exists]
        ended = await self.recorder.interrupt_streaming(gone) if gone else 0
        for run_id, exists in found.items():
            if exists:
                ended += await self._abandon(run_id)
        return ended

    def _ensure_heartbeat(self) -> None:
        if self.shared is not None and self._heartbeat is None and self.accepting:
            self._heartbeat = asyncio.create_task(self._beat(), name="ssechat-heartbeat")

    def _chore(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _beat(self) -> None:
        """Renew this replica's marks, take the cancel requests for its runs, and end the
        runs it follows whose replica has gone. Slow work goes to tasks of its own: a beat
        that came late would let this replica's own marks expire."""
        assert self.shared is not None
        loop = asyncio.get_running_loop()
        swept, failing = loop.time(), False
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                for run_id in await self.shared.heartbeat(list(self._runs), list(self._followers)):
                    self.cancel(run_id)
                elsewhere = [run_id for run_id in self._followers if run_id not in self._runs]
                for run_id, exists in (await self.shared.orphans(elsewhere)).items():
                    if exists:
                        self._chore(self._abandon(run_id))
                failing = False
            except EventLogUnavailable as exc:
                if not failing:
                    logger.warning("heartbeat: %s", exc.message)
                failing = True
            if loop.time() - swept > SWEEP_S:
                swept = loop.time()
                self._chore(self._sweep())

    async def _sweep(self) -> None:
        try:
            if ended := await self.recover():
                logger.warning(
                    "%d answers left open by a replica that went away: interrupted", ended
                )
        except Exception as exc:  # the store or the log is down: the next sweep retries
            logger.warning("could not look for abandoned runs: %s", exc)

    async def _abandon(self, run_id: str) -> bool:
        """End a run whose replica went away, once across all replicas: its followers get
        `interrupted` (retryable), and its answer is saved from its log unless its replica
        saved it before going."""
        assert self.shared is not None
        # Ended before it is saved (unlike a run's own end): ending it is what elects, among
        # the replicas that noticed, the one that saves it. Followers may see `interrupted` a
        # moment before the store says so.
        if not await self.shared.abandon(run_id, LOST.event):
            return False
        events = await read_to_end(self, run_id)
        start = events[0]
        assert isinstance(start, Start), "a log begins with its run's start"
        run = Run(
            start.run_id,
            start.pipeline,
            start.model,
            start.conversation_id,
            start.message_id,
            user="",
            created_at=start.created_at,
            status=LOST.status,
            error=LOST.event,
        )
        for event in events[1:-1]:
            _note(run, event)
        self.metrics.runs.labels(run.pipeline, run.status).inc()
        self.metrics.errors.labels(LOST.event.code).inc()
        await self._record(run, only_if_streaming=True)
        return True

    async def _execute(self, run: Run, pipeline: Pipeline, ctx: Context) -> None:
        model = _Metered(ctx.model)
        ctx = replace(ctx, model=model)
        started = time.perf_counter()
        ttft: float | None = None
        quality = None
        end: Event = Error("internal_error", "the run ended unexpectedly")
        ended_elsewhere = False
        self.metrics.active_runs.inc()
        # A log in memory takes an item at once (`add`: no coroutine, so no cancel between
        # logging it and noting it), and a token as its text: no Delta is made for it. Any
        # other log's append may suspend, and needs `_emit`'s shield.
        add = self.local.add if self.local is not None else None
        text = run.text
        try:
            async with aclosing(pipeline(ctx)) as items:
                async for item in items:
                    if type(item) is str:  # a token: the path of almost every item
                        if ttft is None:
                            ttft = self._first_token(started)
                        if add is not None:
                            add(run.id, item)
                            text.append(item)
                            continue
                    event = _as_event(item, run.pipeline)
                    if isinstance(event, Metadata):
                        quality = event.quality  # merged into the run's own metadata below
                        continue
                    if type(event) is Delta and ttft is None:
                        ttft = self._first_token(started)
                    if add is not None:
                        add(run.id, event)
                        _note(run, event)
                    else:
                        await self._emit(run, event)
            run.usage = model.usage
            total = (time.perf_counter() - started) * 1000
            await self.log.append(
                run.id, Metadata(run.model, model.usage, Timings(ttft, total), quality)
            )
            end = Complete(
                run.message_id,
                "".join(run.text),
                model.finish_reason,
                sql=run.sql_text,
                csv_url=run.csv_url,
                usage=model.usage,
            )
            run.status = "complete"
        except asyncio.CancelledError:
            run.status, end = run.stop_reason.status, run.stop_reason.event
        except EventLogUnavailable as exc:  # nobody can follow it: stop, and save what it has
            run.status, end = "interrupted", Error(exc.code, exc.message, exc.retryable)
        except LogEnded:  # another replica ended it (this one's heartbeat lapsed) and saved it
            run.status, end, ended_elsewhere = LOST.status, LOST.event, True
        except SsechatError as exc:
            run.status, end = "error", Error(exc.code, exc.message, exc.retryable)
        except Exception:
            logger.exception("run %s: pipeline %r failed", run.id, run.pipeline)
            run.status = "error"
            end = Error("pipeline_error", f"the {run.pipeline!r} pipeline failed")
        finally:
            if run.grace is not None:
                run.grace.cancel()
            run.usage = run.usage or model.usage
            run.error = end if isinstance(end, Error) else None
            self.metrics.active_runs.dec()
            self.metrics.runs.labels(run.pipeline, run.status).inc()
            if run.error is not None:
                self.metrics.errors.labels(run.error.code).inc()
            # Saved before the end is announced: a client that sees `complete` can read it.
            await self._record(run, only_if_streaming=ended_elsewhere)
            try:
                if not ended_elsewhere:
                    await self.log.append(run.id, end)
                    await self.log.close(run.id)
            except (EventLogUnavailable, LogEnded) as exc:
                logger.warning("run %s: ended %s; not logged: %s", run.id, run.status, exc)
            self._runs.pop(run.id, None)
            self._ended[run.id] = run.user  # not the run: its text and task can go now
            asyncio.get_running_loop().call_later(self.retention, self._ended.pop, run.id, None)

    def _first_token(self, started: float) -> float:
        """Milliseconds from the run's start (`perf_counter`) to now, its first token."""
        ttft = (time.perf_counter() - started) * 1000
        self.metrics.ttft.observe(ttft / 1000)
        return ttft

    async def _emit(self, run: Run, event: Event) -> None:
        """Log `event` on a log whose append may suspend (a shared one) and note it on the run:
        both or neither, so that the saved answer is exactly what its subscribers saw, even
        when a cancel comes in between.
        On the wire a cancel can land mid-write: the write finishes before the run stops."""
        write = asyncio.ensure_future(self.log.append(run.id, event))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            if not write.cancelled() and write.exception() is None:
                _note(run, event)
            raise
        _note(run, event)

    async def _save_progress(self) -> None:
        """Every `save_interval`, save what each run generated since: one task and one
        transaction for all of them, not a timer and a write per run."""
        assert self.recorder is not None
        while True:
            await asyncio.sleep(self.save_interval)
            grown = [(r, len(r.text)) for r in self._runs.values() if len(r.text) > r.saved]
            # In slices: preparing a statement's rows runs on the event loop, and a thousand
            # at once held every stream up for ~10 ms.
            for i in range(0, len(grown), SAVE_SLICE):
                part = grown[i : i + SAVE_SLICE]
                pieces = [(run, n, "".join(run.text[run.saved : n])) for run, n in part]
                try:
                    await self.recorder.append_texts({run.message_id: p for run, _, p in pieces})
                except Exception:  # the next save sends the same pieces again, and more
                    logger.exception("could not save the progress of %d runs", len(part))
                    continue
                for run, n, piece in pieces:
                    # What was saved stays as one piece: a run's list of pieces is walked by
                    # every full garbage collection, so it keeps a piece per save, not per token.
                    run.text[run.saved : n] = [piece]
                    run.saved += 1

    async def _record(self, run: Run, *, only_if_streaming: bool = False) -> None:
        if self.recorder is None:
            return
        try:
            await self.recorder.finish(
                run.message_id,
                status="error" if run.status == "running" else run.status,
                content="".join(run.text),
                only_if_streaming=only_if_streaming,
                usage=_asdict(run.usage),
                sources=[_asdict(s) for s in run.sources] or None,
                sql=run.sql_text,
                sql_dialect=run.sql.dialect if run.sql else None,
                table_preview=_asdict(run.table),
                csv_url=run.csv_url,
                csv=_asdict(run.csv),
                error=_asdict(run.error),
            )
        except Exception:
            logger.exception("run %s: could not save the answer", run.id)


def _note(run: Run, event: Event) -> None:
    """Keep what the stored message records: its text, sources, SQL, table and CSV."""
    if isinstance(event, Delta):
        run.text.append(event.text)
    elif isinstance(event, Sources):
        run.sources = event.sources
    elif isinstance(event, Sql):
        run.sql = event
    elif isinstance(event, Table):
        run.table = event
    elif isinstance(event, Csv):
        run.csv = event


def _asdict(value: Any) -> Any:
    """An event value as plain JSON data for a JSON column."""
    return None if value is None else orjson.loads(orjson.dumps(value))


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
    """One response's cursor into a run's log, rendered in its dialect.

    It is read (`next`), or, once caught up and if the log can push, it listens: each event
    appended is rendered at once (in the canonical dialect, the log's message is taken as it
    is) and kept until the response `take`s it, and the response is told through
    `ready(ended)` (a stream on the direct path of `transport.py` then writes what came since
    in one write, and no task wakes per event)."""

    __slots__ = (
        "_canonical",
        "_closed",
        "_count",
        "_live",
        "_pending",
        "_ready",
        "_render",
        "_render_text",
        "_renderer",
        "_runs",
        "_stop",
        "after",
        "run_id",
    )

    def __init__(
        self, runs: RunManager, run_id: str, after: int, first: Batch, renderer: Renderer
    ) -> None:
        self._runs = runs
        self.run_id = run_id
        self.after = after
        self._pending: Batch | None = first  # read while subscribing; sent first
        self._renderer = renderer  # for a batch read from the log (`next`)
        self._render = renderer.render  # for an event appended while listening
        self._render_text = text_renderer(renderer)
        # Whether the renderer makes exactly the log's messages: then it is handed them.
        self._canonical = getattr(renderer, "canonical", False) is True
        self._live: list[bytes] = []  # rendered while listening, not taken yet
        # Events sent and not yet added to the `events_sent` counter: it is added to in steps
        # (`_sent`), since a stream writing an event at a time would take its lock per event.
        self._count = 0
        self._closed = False  # the log ended while listening
        self._ready: Callable[[bool], None] | None = None
        self._stop: Callable[[], None] | None = None

    @property
    def exhausted(self) -> bool:
        """Nothing left to send: the run has ended and the client has seen all of it."""
        return self._pending is not None and self._pending.closed and not self._pending.items

    async def next(self, timeout: float) -> tuple[bytes, bool]:
        if self._live or self._closed:  # left over from listening
            return self.take()
        batch, self._pending = self._pending, None
        if batch is None:
            try:
                batch = await self._read(timeout)
            except EventLogUnavailable as exc:
                # The client resumes from its Last-Event-ID once the log is back.
                error = Error(exc.code, exc.message, exc.retryable)
                return self._render(self.after, error), True
        if not batch.items:
            return b"", batch.closed
        self.after = batch.last
        self._sent(len(batch.items))
        return render_items(self._renderer, batch.first, batch.items), batch.closed

    def listen(self, ready: Callable[[bool], None]) -> bool:
        """Start listening if caught up (False: `next` has more, or the log cannot push)."""
        if self._pending is not None or self._live or self._closed:
            return False
        self._stop = self._runs.log.listen(self.run_id, self.after, self._on_event)
        if self._stop is None:
            return False
        self._ready = ready
        return True

    def unlisten(self) -> None:
        if self._stop is not None:
            self._stop()
        self._stop = self._ready = None

    def take(self) -> tuple[bytes, bool]:
        """What came while listening, rendered, and whether the run has ended."""
        data = b"".join(self._live)
        self._live.clear()
        return data, self._closed

    def _sent(self, n: int) -> None:
        self._count += n
        if self._count >= METRICS_STEP:
            self._publish()

    def _publish(self) -> None:
        self._runs.metrics.events_sent.inc(self._count)
        self._count = 0

    def _on_event(self, seq: int, item: Item | None, message: bytes) -> None:
        if self._closed:
            return
        if item is None:
            self._closed = True
            self._stop = None  # an ended log has dropped its listeners
        else:
            self.after = seq
            self._sent(1)
            try:
                data = (
                    message
                    if self._canonical
                    else self._render_text(seq, item)
                    if isinstance(item, str)
                    else self._render(seq, item)
                )
            except Exception:  # one response's bug must not stop the run for every other
                logger.exception("run %s: could not render event %d", self.run_id, seq)
                self._closed, data = True, b""
            if data:
                self._live.append(data)
        if self._ready is not None:
            self._ready(self._closed)

    async def _read(self, timeout: float) -> Batch:
        log = self._runs.log
        batch = await log.read(self.run_id, self.after, timeout)
        if batch.items and not batch.closed and timeout > 0:
            # Woken by an event: let the loop turn once, so that what the run (and any
            # other producer) has ready joins this write. A write costs more than an
            # event: at saturation this halves them, and it delays an event by one turn.
            await asyncio.sleep(0)
            more = await log.read(self.run_id, batch.last, 0)
            if more.items or more.closed:
                batch = batch.then(more)
        return batch

    def close(self) -> None:
        self.unlisten()
        self._publish()
        self._runs._unsubscribe(self.run_id)


class _Collector:
    """A renderer that keeps the events instead of rendering them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def render(self, seq: int, event: Event) -> bytes:
        self.events.append(event)
        return b""


async def read_to_end(runs: RunManager, run_id: str, after: int = 0) -> list[Event]:
    """Every event of the run after seq `after`, once it has ended: what a non-streaming
    response is built from. It waits as a subscriber, so the run counts it as a listener
    (no grace-period stop); `RunNotFound` for an unknown run."""
    collector = _Collector()
    subscription = await runs.subscribe(run_id, after, collector)
    try:
        done = False
        while not done:
            _, done = await subscription.next(60.0)
    finally:
        subscription.close()
    return collector.events
