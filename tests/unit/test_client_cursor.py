"""The client's stream cursor (ssechat.client._Cursor): decoding, resuming, errors."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssechat.client import ChatError, Client, _checked, _Cursor
from ssechat.dialects.ssechat import CanonicalRenderer
from ssechat.events import (
    Complete,
    Delta,
    Error,
    Event,
    Metadata,
    Start,
    Status,
    Timings,
    Usage,
)

RUN_ID = "run_0123"
BODY = {"message": "What is the capital of France?"}

RUN: list[Event] = [
    Start(RUN_ID, "conv_1", "msg_1", "chat", "scripted", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    Status("generating"),
    Delta("The"),
    Delta(" capital\nof"),
    Delta(" France is «Paris» 😀."),
    Metadata("scripted", Usage(8, 3), Timings(1.5, 9.0)),
    Complete("msg_1", "The capital\nof France is «Paris» 😀.", "stop", usage=Usage(8, 3)),
]


def wire(events: list[Event], first_seq: int = 1) -> bytes:
    renderer = CanonicalRenderer()
    return b"".join(renderer.render(seq, e) for seq, e in enumerate(events, start=first_seq))


def messages(events: list[Event], first_seq: int = 1) -> list[bytes]:
    renderer = CanonicalRenderer()
    return [renderer.render(seq, e) for seq, e in enumerate(events, start=first_seq)]


def cut(data: bytes, positions: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(positions)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(cursor: _Cursor, chunks: list[bytes]) -> list[Event]:
    out: list[Event] = []
    for chunk in chunks:
        out += cursor.feed(chunk)
    return out


def consume(stream: Iterable[Event], into: list[Event]) -> None:
    """Append what `stream` gives to `into`, which keeps them if the stream then raises."""
    for event in stream:
        into.append(event)


STREAM = wire(RUN)


# --- decoding ------------------------------------------------------------------------------


def test_the_whole_run_in_one_chunk_gives_every_event_in_order() -> None:
    cursor = _Cursor()
    assert cursor.feed(STREAM) == RUN
    assert cursor.last_seq == len(RUN)


def test_byte_by_byte_gives_every_event_in_order() -> None:
    cursor = _Cursor()
    assert feed_all(cursor, [STREAM[i : i + 1] for i in range(len(STREAM))]) == RUN


@settings(max_examples=200, database=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_any_chunking_gives_every_event_in_order(positions: list[int]) -> None:
    cursor = _Cursor()
    assert feed_all(cursor, cut(STREAM, positions)) == RUN
    assert cursor.done is True
    assert cursor.last_seq == len(RUN)


def test_done_becomes_true_only_with_the_complete_event() -> None:
    cursor = _Cursor()
    for message in messages(RUN)[:-1]:
        cursor.feed(message)
        assert cursor.done is False
    assert cursor.feed(messages(RUN)[-1]) == [RUN[-1]]
    assert cursor.done is True


def test_keepalive_comments_and_retry_lines_are_ignored() -> None:
    cursor = _Cursor()
    parts = messages(RUN)
    noisy = b"retry: 1000\n\n" + b": ping\n\n".join(parts)
    assert cursor.feed(noisy) == RUN


# --- requests and resuming -----------------------------------------------------------------


def test_the_first_request_posts_the_body_to_the_chat_stream() -> None:
    method, path, json, headers = _Cursor().request(BODY)
    assert (method, path, json) == ("POST", "/v1/chat/stream", BODY)
    assert headers["accept"] == "text/event-stream"
    assert "last-event-id" not in headers


def test_an_ok_response_tells_the_cursor_its_run() -> None:
    cursor = _Cursor()
    response = httpx.Response(
        200, headers={"x-run-id": RUN_ID}, request=httpx.Request("POST", "http://x")
    )
    cursor.opened(response, b"")
    assert cursor.run_id == RUN_ID


@pytest.mark.parametrize("delivered", [1, 3, 5])
def test_a_resume_asks_for_the_runs_events_after_the_last_seq_seen(delivered: int) -> None:
    cursor = _Cursor()
    feed_all(cursor, messages(RUN)[:delivered])
    cursor.run_id = RUN_ID
    method, path, json, headers = cursor.request(BODY)
    assert (method, path, json) == ("GET", f"/v1/runs/{RUN_ID}/events", None)
    assert headers["last-event-id"] == str(delivered)
    assert headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("replay_from", [1, 2, 4])
def test_a_replay_repeating_delivered_events_yields_only_the_new_ones(replay_from: int) -> None:
    cursor = _Cursor()
    parts = messages(RUN)
    # The first connection drops after 4 messages and half of the 5th.
    first = feed_all(cursor, [*parts[:4], parts[4][: len(parts[4]) // 2]])
    assert first == RUN[:4]
    cursor.run_id = RUN_ID
    assert cursor.request(BODY)[3]["last-event-id"] == "4"
    # A server may replay from earlier than asked; nothing is delivered twice.
    second = cursor.feed(wire(RUN[replay_from - 1 :], first_seq=replay_from))
    assert second == RUN[4:]
    assert first + second == RUN
    assert cursor.done is True


def test_two_reconnects_still_deliver_each_event_once() -> None:
    cursor = _Cursor()
    parts = messages(RUN)
    got = feed_all(cursor, parts[:2])
    cursor.run_id = RUN_ID
    cursor.request(BODY)
    got += feed_all(cursor, parts[:5])
    assert cursor.request(BODY)[3]["last-event-id"] == "5"
    got += cursor.feed(STREAM)
    assert got == RUN


# --- errors --------------------------------------------------------------------------------


def test_an_error_event_raises_chat_error_with_its_code_and_retryable() -> None:
    cursor = _Cursor()
    feed_all(cursor, messages(RUN[:3]))
    failing = wire([Error("model_error", "the model failed", retryable=True)], first_seq=4)
    (event,) = cursor.feed(failing)
    with pytest.raises(ChatError) as caught:
        _checked(event)
    assert caught.value.code == "model_error"
    assert caught.value.message == "the model failed"
    assert caught.value.retryable is True
    assert caught.value.status is None
    assert cursor.done is True


def test_a_non_retryable_error_says_so() -> None:
    cursor = _Cursor()
    with pytest.raises(ChatError) as caught:
        [_checked(e) for e in cursor.feed(wire([Error("cancelled", "the run was cancelled")]))]
    assert caught.value.code == "cancelled"
    assert caught.value.retryable is False


def test_a_refused_request_raises_chat_error_with_status_and_code() -> None:
    cursor = _Cursor()
    error = {"code": "unknown_format", "message": "unknown format 'x'"}
    response = httpx.Response(400, json={"error": error}, request=httpx.Request("POST", "http://x"))
    with pytest.raises(ChatError) as caught:
        cursor.opened(response, response.content)
    assert caught.value.status == 400
    assert caught.value.code == "unknown_format"
    assert caught.value.message == "unknown format 'x'"
    assert cursor.run_id is None


def test_a_refused_request_without_a_json_error_still_raises_chat_error_with_its_status() -> None:
    cursor = _Cursor()
    response = httpx.Response(
        502, text="Bad Gateway from the proxy", request=httpx.Request("POST", "http://x")
    )
    with pytest.raises(ChatError) as caught:
        cursor.opened(response, response.content)
    assert caught.value.status == 502
    assert caught.value.code == "http_error"
    assert "Bad Gateway" in caught.value.message


def test_events_sent_in_the_same_write_as_an_error_still_reach_the_user() -> None:
    # The server writes every event a read returns in one send, so the answer so far and the
    # error that ends it can arrive in a single chunk.
    body = wire([*RUN[:3], Error("model_error", "the model failed", retryable=True)])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "x-run-id": RUN_ID},
            stream=httpx.ByteStream(body),  # one chunk, as the server wrote it
        )

    client = Client("http://testserver")
    client._http.close()
    client._http = httpx.Client(
        base_url="http://testserver", transport=httpx.MockTransport(handler)
    )
    received: list[Event] = []
    with client, pytest.raises(ChatError) as caught:
        consume(client.stream("hi"), received)
    assert caught.value.code == "model_error"
    assert received == RUN[:3]


def test_a_drop_before_the_run_is_known_is_raised_not_retried() -> None:
    cursor = _Cursor(max_retries=3)
    error = httpx.ConnectError("refused")
    with pytest.raises(httpx.ConnectError):
        cursor.dropped(error)


def test_drops_back_off_and_give_up_after_max_retries_in_a_row() -> None:
    cursor = _Cursor(max_retries=2)
    cursor.run_id = "run_1"
    error = httpx.ReadError("cut")
    first, second = cursor.dropped(error), cursor.dropped(error)
    assert 0 < first < second
    with pytest.raises(httpx.ReadError):
        cursor.dropped(error)


def test_data_arriving_resets_the_count_of_failed_reconnects() -> None:
    cursor = _Cursor(max_retries=1)
    cursor.run_id = "run_1"
    cursor.dropped(httpx.ReadError("cut"))
    feed_all(cursor, messages(RUN[:1]))
    assert cursor.dropped(httpx.ReadError("cut again")) > 0
