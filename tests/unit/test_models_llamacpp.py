"""The embedded backend in-process: real tokens, and a stop that reaches the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from ssechat.errors import ModelError
from ssechat.models import GenerationParams, Message
from ssechat.models.llamacpp import LlamaCppBackend, default_model_path

pytestmark = pytest.mark.model

PROMPT = [
    Message("system", "You are a concise assistant. Answer in one sentence."),
    Message("user", "What is the capital of France?"),
]


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    return LlamaCppBackend(default_model_path(), max_tokens=300)


async def test_it_streams_text_then_usage_and_finish_reason(backend: LlamaCppBackend) -> None:
    deltas = [d async for d in backend.stream(PROMPT, GenerationParams(temperature=0))]
    text = "".join(d.text for d in deltas)
    assert "Paris" in text
    last = deltas[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert last.usage.completion_tokens == sum(1 for d in deltas if d.text)
    assert last.usage.prompt_tokens > 10


async def test_closing_the_stream_stops_the_model_between_tokens(
    backend: LlamaCppBackend,
) -> None:
    story = [Message("user", "Tell a very long story about a dragon and a knight.")]
    params = GenerationParams(max_tokens=300, temperature=0.8, seed=1)
    stream: AsyncIterator[object] = backend.stream(story, params)
    async with aclosing(stream):  # type: ignore[type-var]
        for _ in range(5):
            await anext(stream)
    stopped_at = backend.tokens_generated
    await asyncio.sleep(1.0)  # at ~100 tokens/s the model would have run on by dozens
    assert backend.tokens_generated - stopped_at <= 1
    # and the model is free for the next question
    answer = "".join(
        [d.text async for d in backend.stream(PROMPT, GenerationParams(temperature=0))]
    )
    assert "Paris" in answer


async def test_max_tokens_caps_the_answer(backend: LlamaCppBackend) -> None:
    story = [Message("user", "Tell a very long story about a dragon.")]
    deltas = [d async for d in backend.stream(story, GenerationParams(max_tokens=8))]
    assert sum(1 for d in deltas if d.text) <= 8
    assert deltas[-1].finish_reason == "length"


def test_a_missing_model_file_is_a_clear_error(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(ModelError, match="not found"):
        LlamaCppBackend(Path("/nonexistent/model.gguf"))
