"""The `chat` pipeline: system prompt + conversation history + question → model → deltas."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from ssechat.events import Event, Status
from ssechat.models import Message
from ssechat.pipelines import Context, register_pipeline


@register_pipeline("chat")
async def chat(ctx: Context) -> AsyncGenerator[Event | str, None]:
    system = [Message("system", ctx.system_prompt)] if ctx.system_prompt else []
    messages = [*system, *ctx.history, Message("user", ctx.question)]
    yield Status("generating")
    # aclosing: a stop reaching this pipeline closes the model's stream at once.
    async with aclosing(ctx.model.stream(messages, ctx.params)) as deltas:
        async for delta in deltas:
            if delta.text:
                yield delta.text
