"""Python client for ssechat's canonical stream, sync (`Client`) and async (`AsyncClient`).

Both share one pure `_Cursor` that turns response bytes into typed events and remembers the
run and the last seq seen, so after a dropped connection either client resumes the same run
through `/v1/runs/{id}/events` with `Last-Event-ID`: no event lost, none repeated. The two
classes differ only in how they wait for I/O. An `error` event becomes a `ChatError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from ssechat import events as ev
from ssechat.sse import Decoder

RESUMABLE = (httpx.TransportError, httpx.RemoteProtocolError)


class ChatError(Exception):
    """The server refused the request (`status` set) or ended the stream with an `error`."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.retryable = code, message, status, retryable


class _Cursor:
    """Where a stream is: the run, the last seq delivered, whether it has ended, and how many
    reconnects in a row have failed. All the logic of a stream lives here; `Client` and
    `AsyncClient` only do its I/O."""

    def __init__(self, max_retries: int = 5) -> None:
        self.run_id: str | None = None
        self.last_seq = 0
        self.done = False
        self.decoder = Decoder()
        self.max_retries = max_retries
        self.failures = 0

    def dropped(self, exc: Exception) -> float:
        """The connection broke: the seconds to wait before resuming, or `exc` re-raised when
        there is no run to resume yet or too many reconnects failed in a row."""
        self.failures += 1
        if self.run_id is None or self.failures > self.max_retries:
            raise exc
        return min(0.25 * 2.0**self.failures, 5.0)

    def request(
        self, body: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
        """(method, path, json, headers) for the first request or a resume."""
        headers = {"accept": "text/event-stream"}
        if self.run_id is None:
            return "POST", "/v1/chat/stream", body, headers
        self.decoder = Decoder()  # a new connection starts a new event stream
        headers["last-event-id"] = str(self.last_seq)
        return "GET", f"/v1/runs/{self.run_id}/events", None, headers

    def opened(self, response: httpx.Response, body: bytes) -> None:
        if response.status_code != 200:
            try:
                err = response.json()["error"]
                raise ChatError(err["code"], err["message"], status=response.status_code)
            except (ValueError, KeyError, TypeError):
                raise ChatError(
                    "http_error", body.decode(errors="replace")[:500], status=response.status_code
                ) from None
        self.run_id = response.headers.get("x-run-id", self.run_id)

    def feed(self, chunk: bytes) -> list[ev.Event]:
        out: list[ev.Event] = []
        for message in self.decoder.feed(chunk):
            self.failures = 0  # data arrived: the connection works again
            seq = int(message.id) if message.id and message.id.isdigit() else 0
            if seq and seq <= self.last_seq:
                continue  # already delivered before a reconnect
            self.last_seq = seq or self.last_seq
            event = ev.loads(message.event or "message", message.data)
            if isinstance(event, ev.TERMINAL):
                self.done = True
            out.append(event)
        return out


def _checked(event: ev.Event) -> ev.Event:
    """The event, or its `ChatError` raised — in stream order, so the events written in the
    same chunk before an `error` still reach the caller first."""
    if isinstance(event, ev.Error):
        raise ChatError(event.code, event.message, retryable=event.retryable)
    return event


def _body(message: str, **fields: Any) -> dict[str, Any]:
    return {"message": message, **{k: v for k, v in fields.items() if v is not None}}


def _headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


class Client:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=httpx.Timeout(timeout, read=None)
        )
        self.max_retries = max_retries

    def stream(self, message: str, **fields: Any) -> Iterator[ev.Event]:
        """Events of a new run, resuming it after a dropped connection."""
        cursor, body = _Cursor(self.max_retries), _body(message, **fields)
        while not cursor.done:
            method, path, json, headers = cursor.request(body)
            try:
                with self._http.stream(method, path, json=json, headers=headers) as response:
                    cursor.opened(response, response.read() if response.status_code != 200 else b"")
                    for chunk in response.iter_raw():
                        yield from map(_checked, cursor.feed(chunk))
                if not cursor.done:
                    raise httpx.RemoteProtocolError("the stream ended before the run did")
            except RESUMABLE as exc:
                time.sleep(cursor.dropped(exc))

    def ask(self, message: str, **fields: Any) -> ev.Complete:
        """The whole answer of a new run."""
        for event in self.stream(message, **fields):
            if isinstance(event, ev.Complete):
                return event
        raise ChatError("incomplete", "the stream ended without a complete event")

    def cancel(self, run_id: str) -> None:
        self._http.post(f"/v1/runs/{run_id}/cancel").raise_for_status()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=httpx.Timeout(timeout, read=None)
        )
        self.max_retries = max_retries

    async def stream(self, message: str, **fields: Any) -> AsyncIterator[ev.Event]:
        """Events of a new run, resuming it after a dropped connection."""
        cursor, body = _Cursor(self.max_retries), _body(message, **fields)
        while not cursor.done:
            method, path, json, headers = cursor.request(body)
            try:
                async with self._http.stream(method, path, json=json, headers=headers) as response:
                    err_body = await response.aread() if response.status_code != 200 else b""
                    cursor.opened(response, err_body)
                    async for chunk in response.aiter_raw():
                        for event in cursor.feed(chunk):
                            yield _checked(event)
                if not cursor.done:
                    raise httpx.RemoteProtocolError("the stream ended before the run did")
            except RESUMABLE as exc:
                await asyncio.sleep(cursor.dropped(exc))

    async def ask(self, message: str, **fields: Any) -> ev.Complete:
        async for event in self.stream(message, **fields):
            if isinstance(event, ev.Complete):
                return event
        raise ChatError("incomplete", "the stream ended without a complete event")

    async def cancel(self, run_id: str) -> None:
        (await self._http.post(f"/v1/runs/{run_id}/cancel")).raise_for_status()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
