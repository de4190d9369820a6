"""The official `openai` Python SDK, configured with nothing but the server's base URL (and a key
of its own, which a server without keys ignores), against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.conftest import Server
from tests.integration.conftest import TEXT, WORDS

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def client(server: Server, **options: Any) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="sk-anything", **options)


def test_a_streamed_completion_gives_the_answer_in_chunks_and_a_stop(compat: Server) -> None:
    with client(compat) as openai_client:
        stream = openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, stream=True
        )
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-run_")
    assert chunks[0].model == "scripted"  # the model that answered, whatever was asked for


def test_include_usage_adds_a_last_chunk_with_usage_and_no_choices(compat: Server) -> None:
    with client(compat) as openai_client:
        chunks = list(
            openai_client.chat.completions.create(
                model="gpt-4o-mini",
                messages=ASK,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    *answer, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == len(WORDS)
    assert last.usage.total_tokens == last.usage.prompt_tokens + len(WORDS)
    assert all(c.usage is None for c in answer)


def test_a_completion_without_stream_is_one_body_with_usage(compat: Server) -> None:
    with client(compat) as openai_client:
        completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(WORDS)


def test_async_client_streams_the_same_answer(compat: Server) -> None:
    async def ask() -> str:
        async with AsyncOpenAI(base_url=f"{compat.url}/v1", api_key="sk-anything") as aclient:
            stream = await aclient.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(ask()) == TEXT


def test_earlier_messages_reach_the_model_as_history(compat: Server) -> None:
    # The scripted model counts the words of every message it is given as prompt tokens.
    history = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Bonjour"},
    ]
    with client(compat) as openai_client:
        alone = openai_client.chat.completions.create(model="m", messages=ASK)
        after = openai_client.chat.completions.create(model="m", messages=[*history, *ASK])
    assert alone.usage is not None
    assert after.usage is not None
    assert after.usage.prompt_tokens - alone.usage.prompt_tokens == 3 + 2 + 1


def test_sampling_parameters_become_the_runs_params(compat: Server) -> None:
    with client(compat) as openai_client:
        completion = openai_client.chat.completions.create(
            model="m", messages=ASK, max_completion_tokens=2, temperature=0.5, seed=7
        )
    assert completion.choices[0].message.content == " ".join(WORDS[:2])
    assert completion.choices[0].finish_reason == "length"


def test_a_refused_request_raises_the_sdks_error_with_openais_error_body(
    compat: Server,
) -> None:
    with client(compat) as openai_client, pytest.raises(openai.BadRequestError) as refused:
        openai_client.chat.completions.create(model="m", messages=[])
    assert refused.value.status_code == 400
    assert refused.value.type == "invalid_request_error"
    assert refused.value.code == "invalid_request"
    assert "messages" in refused.value.message


def test_refusals_have_openais_shape_but_other_routes_keep_ssechats(compat: Server) -> None:
    openai_style = httpx.post(f"{compat.url}/v1/chat/completions", content=b"{", timeout=10)
    assert openai_style.status_code == 415
    assert set(openai_style.json()["error"]) == {"message", "type", "param", "code"}
    ssechat_style = httpx.post(f"{compat.url}/v1/chat/stream", content=b"{", timeout=10)
    assert set(ssechat_style.json()["error"]) == {"code", "message"}


def test_a_failure_mid_stream_raises_an_api_error_with_the_message(failing: Server) -> None:
    received: list[str] = []
    with client(failing) as openai_client:
        stream = openai_client.chat.completions.create(model="m", messages=ASK, stream=True)
        with pytest.raises(openai.APIError) as failed:
            received.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert failed.value.message == "scripted failure after 3 tokens"
    assert failed.value.code == "model_error"
    assert "".join(received) == " ".join(WORDS[:3])


def test_a_failure_without_stream_is_a_server_error(failing: Server) -> None:
    with (
        client(failing, max_retries=0) as openai_client,
        pytest.raises(openai.InternalServerError) as failed,
    ):
        openai_client.chat.completions.create(model="m", messages=ASK)
    assert failed.value.status_code == 502
    assert failed.value.code == "model_error"


def test_models_lists_and_retrieves_the_served_model(compat: Server) -> None:
    with client(compat) as openai_client:
        assert [m.id for m in openai_client.models.list()] == ["scripted"]
        assert openai_client.models.retrieve("scripted").owned_by == "scripted"
        with pytest.raises(openai.NotFoundError) as missing:
            openai_client.models.retrieve("gpt-4o-mini")
    assert missing.value.code == "model_not_found"
