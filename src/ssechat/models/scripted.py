"""A deterministic backend for tests and benchmarks only: fixed text, set pace, injected faults.

Never a default. Its knobs come from settings and may be overridden per request through
`params` (`text`, `delay`, `fail_after`, `stamp`, `tool_call`), so one test server can play
many scenarios.

`stamp` is for the benchmarks (bench/): each token's text becomes a space and the
`time.monotonic_ns()` at which it was produced, so a load generator on the same machine
(CLOCK_MONOTONIC is system-wide) can tell how long the token took to reach it. With `stamp`
and no `delay` the backend also yields to the event loop after every token, as a real model's
network read does: without it a run would produce its whole answer in one step of the loop,
and concurrent streams would take turns answer by answer instead of token by token.

`tool_call` scripts a tool call: a request that offers tools (`params.tools`) gets that call
instead of text — a real model, too, calls only what it is offered — so one request can script
both a pipeline's tool call and its later plain answer. In-process tests can also `enqueue`
replies (text or a `ToolCall`), used one per `stream()` call before anything else.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ssechat.errors import ModelError
from ssechat.events import Usage
from ssechat.models import GenerationParams, Message, ModelDelta, ToolCall, register_backend

if TYPE_CHECKING:
    from ssechat.config import Settings

# A "token" is a word with the whitespace before it, so the pieces concatenate to the text.
_TOKEN = re.compile(r"\s*\S+|\s+")


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    arguments: str = "{}"  # JSON text, as a model would produce it


class ScriptedParams(GenerationParams):
    text: str | None = None
    delay: float | None = Field(default=None, ge=0.0, le=60.0)
    fail_after: int | None = Field(default=None, ge=0)
    tool_call: ScriptedToolCall | None = None
    stamp: bool = False  # benchmarks: each token is " <monotonic ns when produced>"


class ScriptedBackend:
    backend: ClassVar[str] = "scripted"
    params_type: ClassVar[type[GenerationParams]] = ScriptedParams

    def __init__(
        self,
        text: str,
        *,
        delay: float = 0.0,
        fail_after: int | None = None,
        model: str = "scripted",
    ) -> None:
        self.text = text
        self.delay = delay
        self.fail_after = fail_after
        self._model = model
        # Counts tokens actually produced, so tests can prove a stop reached the model.
        self.tokens_generated = 0
        self._queue: deque[str | ToolCall] = deque()

    def enqueue(self, *replies: str | ToolCall) -> None:
        """Answer the next `stream()` calls with these, in order (then as configured)."""
        self._queue.extend(replies)

    @property
    def model(self) -> str:
        return self._model

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        p = params if isinstance(params, ScriptedParams) else ScriptedParams()
        reply = self._queue.popleft() if self._queue else None
        if reply is None and p.tool_call is not None and params.tools:
            reply = ToolCall("call_scripted", p.tool_call.name, p.tool_call.arguments)
        if isinstance(reply, ToolCall):
            self.tokens_generated += 1
            prompt_tokens = sum(len(_TOKEN.findall(m.content)) for m in messages)
            yield ModelDelta(
                tool_calls=(reply,), usage=Usage(prompt_tokens, 1), finish_reason="tool_calls"
            )
            return
        text = reply if reply is not None else self.text if p.text is None else p.text
        delay = self.delay if p.delay is None else p.delay
        fail_after = self.fail_after if p.fail_after is None else p.fail_after
        # One token at a time, as a model makes them, from a position in the text: a list of
        # a long answer's tokens, or a regex scanner (a kilobyte of state), would be held by
        # every waiting stream (bench/: memory per idle stream).
        pos, produced, finish = 0, 0, "stop"
        while match := _TOKEN.match(text, pos):
            token, pos = match.group(), match.end()
            del match
            if params.max_tokens is not None and produced >= params.max_tokens:
                finish = "length"
                break
            if fail_after is not None and produced >= fail_after:
                raise ModelError(f"scripted failure after {fail_after} tokens")
            if delay:
                await asyncio.sleep(delay)
            elif p.stamp:
                await asyncio.sleep(0)  # let other runs interleave (module docstring)
            self.tokens_generated += 1
            produced += 1
            yield ModelDelta(text=f" {time.monotonic_ns()}" if p.stamp else token)
        prompt_tokens = sum(len(_TOKEN.findall(m.content)) for m in messages)
        yield ModelDelta(usage=Usage(prompt_tokens, produced), finish_reason=finish)

    async def aclose(self) -> None:
        return None


@register_backend("scripted")
def _from_settings(settings: Settings) -> ScriptedBackend:
    return ScriptedBackend(
        settings.scripted_text,
        delay=settings.scripted_delay,
        fail_after=settings.scripted_fail_after,
        model=settings.model or "scripted",
    )
