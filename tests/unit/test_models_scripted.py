"""The scripted model backend (ssechat.models.scripted): the deterministic model of the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ssechat.errors import ModelError
from ssechat.models import GenerationParams, Message, ModelDelta, Tool, ToolCall
from ssechat.models.scripted import ScriptedBackend, ScriptedParams, ScriptedToolCall

ASK = (Message("user", "hi"),)
TEXT = "The capital of France is Paris."  # 6 words


async def collect(
    backend: ScriptedBackend,
    params: GenerationParams | None = None,
    messages: Sequence[Message] = ASK,
) -> list[ModelDelta]:
    return [d async for d in backend.stream(messages, params or GenerationParams())]


async def until_failure(
    backend: ScriptedBackend, params: GenerationParams | None = None
) -> tuple[list[ModelDelta], ModelError]:
    got: list[ModelDelta] = []
    with pytest.raises(ModelError) as caught:
        await consume(backend.stream(ASK, params or GenerationParams()), got)
    return got, caught.value


async def consume(stream: AsyncIterator[ModelDelta], into: list[ModelDelta]) -> None:
    """Append what `stream` gives to `into`, which keeps them if the stream then raises."""
    async for delta in stream:
        into.append(delta)


def text_of(deltas: list[ModelDelta]) -> str:
    return "".join(d.text for d in deltas)


def pieces(deltas: list[ModelDelta]) -> list[str]:
    return [d.text for d in deltas if d.text]


@settings(max_examples=300, database=None)
@given(st.text())
def test_the_pieces_concatenate_to_the_text_exactly(text: str) -> None:
    deltas = asyncio.run(collect(ScriptedBackend(text)))
    assert text_of(deltas) == text
    assert "" not in [d.text for d in deltas[:-1]]  # every piece but the last carries text


@settings(max_examples=100, database=None)
@given(st.lists(st.text(alphabet="abcé😀", min_size=1), min_size=1, max_size=10))
def test_each_word_is_its_own_token(words: list[str]) -> None:
    text = "  ".join(words) + "\n"
    backend = ScriptedBackend(text)
    deltas = asyncio.run(collect(backend))
    assert [p.strip() for p in pieces(deltas) if p.strip()] == words
    assert backend.tokens_generated == len(pieces(deltas))


async def test_text_goes_out_piece_by_piece() -> None:
    async with asyncio.timeout(5):
        deltas = await collect(ScriptedBackend(TEXT))
        assert len(pieces(deltas)) == len(TEXT.split())
        assert text_of(deltas) == TEXT


async def test_the_final_delta_carries_usage_and_finish_reason() -> None:
    async with asyncio.timeout(5):
        messages = [Message("system", "Be terse please."), Message("user", "What is up?")]
        deltas = await collect(ScriptedBackend(TEXT), messages=messages)
        final = deltas[-1]
        assert final.text == ""
        assert final.finish_reason == "stop"
        assert final.usage is not None
        assert final.usage.completion_tokens == len(pieces(deltas))
        assert final.usage.prompt_tokens == sum(len(m.content.split()) for m in messages)
        assert all(d.usage is None and d.finish_reason is None for d in deltas[:-1])


async def test_an_empty_text_still_ends_with_usage() -> None:
    async with asyncio.timeout(5):
        deltas = await collect(ScriptedBackend(""))
        assert len(deltas) == 1
        assert deltas[0].usage is not None
        assert deltas[0].usage.completion_tokens == 0
        assert deltas[0].finish_reason == "stop"


@pytest.mark.parametrize("max_tokens", [1, 2, 5])
async def test_max_tokens_truncates_and_finishes_with_length(max_tokens: int) -> None:
    async with asyncio.timeout(5):
        backend = ScriptedBackend(TEXT)
        deltas = await collect(backend, GenerationParams(max_tokens=max_tokens))
        assert text_of(deltas) == " ".join(TEXT.split()[:max_tokens])
        assert len(pieces(deltas)) == max_tokens
        assert deltas[-1].finish_reason == "length"
        assert deltas[-1].usage is not None
        assert deltas[-1].usage.completion_tokens == max_tokens
        assert backend.tokens_generated == max_tokens


@pytest.mark.parametrize("max_tokens", [6, 7, 100])
async def test_max_tokens_at_or_above_the_length_of_the_text_finishes_with_stop(
    max_tokens: int,
) -> None:
    async with asyncio.timeout(5):
        deltas = await collect(ScriptedBackend(TEXT), ScriptedParams(max_tokens=max_tokens))
        assert text_of(deltas) == TEXT
        assert deltas[-1].finish_reason == "stop"


async def test_per_request_text_overrides_the_backends() -> None:
    async with asyncio.timeout(5):
        backend = ScriptedBackend(TEXT)
        deltas = await collect(backend, ScriptedParams(text="Something else entirely."))
        assert text_of(deltas) == "Something else entirely."
        assert backend.tokens_generated == 3


async def test_per_request_empty_text_overrides_the_backends() -> None:
    async with asyncio.timeout(5):
        deltas = await collect(ScriptedBackend(TEXT), ScriptedParams(text=""))
        assert text_of(deltas) == ""


async def test_plain_generation_params_use_the_backends_settings() -> None:
    async with asyncio.timeout(5):
        deltas = await collect(ScriptedBackend(TEXT), GenerationParams(temperature=0.5))
        assert text_of(deltas) == TEXT


async def test_per_request_delay_overrides_the_backends() -> None:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        slow_backend = ScriptedBackend("a b c", delay=30.0)
        started = loop.time()
        assert text_of(await collect(slow_backend, ScriptedParams(delay=0))) == "a b c"
        assert loop.time() - started < 1.0

        fast_backend = ScriptedBackend("a b c d")
        started = loop.time()
        assert text_of(await collect(fast_backend, ScriptedParams(delay=0.04))) == "a b c d"
        assert loop.time() - started >= 4 * 0.04 * 0.9


async def test_the_delay_paces_the_tokens() -> None:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        backend = ScriptedBackend("one two three", delay=0.05)
        started = loop.time()
        arrivals = [loop.time() - started async for _ in backend.stream(ASK, GenerationParams())]
        assert arrivals[0] >= 0.045
        assert arrivals[2] >= 3 * 0.045


@pytest.mark.parametrize("fail_after", [0, 1, 3])
async def test_fail_after_raises_a_model_error_after_that_many_tokens(fail_after: int) -> None:
    async with asyncio.timeout(5):
        backend = ScriptedBackend(TEXT, fail_after=fail_after)
        got, error = await until_failure(backend)
        assert len(got) == fail_after
        assert text_of(got) == " ".join(TEXT.split()[:fail_after])
        assert backend.tokens_generated == fail_after
        assert error.code == "model_error"
        assert error.retryable is True


async def test_per_request_fail_after_overrides_the_backends() -> None:
    async with asyncio.timeout(5):
        got, _ = await until_failure(ScriptedBackend(TEXT), ScriptedParams(fail_after=2))
        assert len(got) == 2
        got, _ = await until_failure(
            ScriptedBackend(TEXT, fail_after=4), ScriptedParams(fail_after=1)
        )
        assert len(got) == 1


async def test_per_request_fail_after_zero_fails_before_any_token() -> None:
    async with asyncio.timeout(5):
        backend = ScriptedBackend(TEXT, fail_after=5)
        got, _ = await until_failure(backend, ScriptedParams(fail_after=0))
        assert got == []
        assert backend.tokens_generated == 0


async def test_closing_the_stream_stops_generation() -> None:
    async with asyncio.timeout(5):
        backend = ScriptedBackend(TEXT, delay=0.01)
        stream = backend.stream(ASK, GenerationParams())
        await anext(stream)
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        assert backend.tokens_generated == 2


def test_the_backend_names_its_model_and_params() -> None:
    backend = ScriptedBackend(TEXT, model="fox-1")
    assert backend.model == "fox-1"
    assert ScriptedBackend(TEXT).model == "scripted"
    assert backend.backend == "scripted"
    assert backend.params_type is ScriptedParams


@pytest.mark.parametrize(
    "bad",
    [{"delay": -1}, {"delay": 61}, {"fail_after": -1}, {"max_tokens": 0}, {"txt": "typo"}],
    ids=str,
)
def test_scripted_params_refuse_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ScriptedParams(**bad)


# -- tool calls and queued replies (the sql pipeline's test double) ---------------------


def test_enqueued_replies_answer_the_next_calls_in_order_then_the_text() -> None:
    backend = ScriptedBackend(TEXT)
    backend.enqueue("first reply", "second")
    assert text_of(asyncio.run(collect(backend))) == "first reply"
    assert text_of(asyncio.run(collect(backend))) == "second"
    assert text_of(asyncio.run(collect(backend))) == TEXT


def test_an_enqueued_tool_call_is_answered_as_a_tool_call() -> None:
    backend = ScriptedBackend(TEXT)
    call = ToolCall("call_9", "run_sql", '{"sql": "SELECT 1"}')
    backend.enqueue(call)
    (delta,) = asyncio.run(collect(backend))
    assert delta.tool_calls == (call,)
    assert delta.text == ""
    assert delta.finish_reason == "tool_calls"
    assert delta.usage is not None


def test_a_scripted_tool_call_is_made_only_when_tools_are_offered() -> None:
    backend = ScriptedBackend(TEXT)
    scripted = ScriptedToolCall(name="run_sql", arguments='{"sql": "SELECT 2"}')
    offered = ScriptedParams(tool_call=scripted, tools=(Tool(name="run_sql"),))
    (delta,) = asyncio.run(collect(backend, offered))
    assert delta.tool_calls == (ToolCall("call_scripted", "run_sql", '{"sql": "SELECT 2"}'),)
    plain = asyncio.run(collect(backend, ScriptedParams(tool_call=scripted, text="No tools.")))
    assert text_of(plain) == "No tools."
    assert all(not d.tool_calls for d in plain)
