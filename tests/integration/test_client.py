"""The Python client against a real server, through a proxy that cuts the first connection
in the middle of an SSE message: it resumes the same run and delivers every event once.
One test body runs the sync and the async client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ssechat import events as ev
from ssechat.client import AsyncClient, ChatError, Client
from tests.conftest import Server
from tests.proxy import CuttingProxy

TEXT = " ".join(f"word{i}" for i in range(60))


def collect(url: str, sync: bool, message: str, **fields: Any) -> list[ev.Event]:
    if sync:
        with Client(url) as client:
            return list(client.stream(message, **fields))

    async def main() -> list[ev.Event]:
        async with AsyncClient(url) as client:
            return [event async for event in client.stream(message, **fields)]

    return asyncio.run(main())


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_the_client_resumes_a_cut_stream_with_every_event_once(
    scripted: Server, sync: bool
) -> None:
    port = int(scripted.url.rsplit(":", 1)[1])
    with CuttingProxy(port, cut_after_bytes=1200) as proxy:
        got = collect(
            f"http://127.0.0.1:{proxy.port}", sync, "hi", params={"text": TEXT, "delay": 0.03}
        )
    assert len(proxy.connections) >= 2  # it really was cut, and came back
    assert "last-event-id" in proxy.connections[1].request_headers
    deltas = [e.text for e in got if isinstance(e, ev.Delta)]
    assert "".join(deltas) == TEXT
    assert len(deltas) == len(TEXT.split())  # none twice
    assert isinstance(got[-1], ev.Complete)
    assert got[-1].text == TEXT


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_an_error_event_reaches_the_caller_as_a_retryable_chat_error(
    scripted: Server, sync: bool
) -> None:
    with pytest.raises(ChatError) as caught:
        collect(scripted.url, sync, "hi", params={"text": TEXT, "fail_after": 2})
    assert caught.value.code == "model_error"
    assert caught.value.retryable is True


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_refused_request_is_a_chat_error_with_its_status(scripted: Server, sync: bool) -> None:
    with pytest.raises(ChatError) as caught:
        collect(scripted.url, sync, "hi", pipeline="nope")
    assert (caught.value.status, caught.value.code) == (400, "unknown_pipeline")
