"""A stream's connection on a real server (uvicorn's httptools on uvloop, as `ssechat serve`
runs it): the stream takes the connection over from uvicorn and gives it back at its end. So
what follows a stream on the same connection, and a client that reads slowly, are tested on
raw sockets, each response parsed by h11."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import h11
import orjson
import pytest

from ssechat.sse import Decoder
from tests.conftest import Server


def post_chat(params: dict[str, object], *, close: bool = False) -> bytes:
    body = orjson.dumps({"message": "hi", "params": params})
    return (
        b"POST /v1/chat/stream HTTP/1.1\r\nHost: test\r\ncontent-type: application/json\r\n"
        b"%scontent-length: %d\r\n\r\n%s"
        % (b"connection: close\r\n" if close else b"", len(body), body)
    )


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"


class Connection:
    """One client connection; `response()` reads the next response on it, whole."""

    def __init__(self, server: Server, *, receive_buffer: int | None = None) -> None:
        url = urlsplit(server.url)
        self.sock = socket.socket()
        if receive_buffer is not None:  # before connecting: it sets the window offered
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect((url.hostname, url.port))
        self.parser = h11.Connection(h11.CLIENT)
        self.headers: list[tuple[bytes, bytes]] = []  # of the last response read

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, bytes]:
        # h11 reads a response for a request it has seen sent: the requests here are sent
        # as raw bytes (pipelined, which h11 would refuse), so it is shown one in their place.
        self.parser.send(h11.Request(method="GET", target="/", headers=[("Host", "test")]))
        self.parser.send(h11.EndOfMessage())
        status, body = 0, b""
        while True:
            event = self.parser.next_event()
            if event is h11.NEED_DATA:
                self.parser.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status, self.headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.parser.their_state is h11.DONE:  # else the server closes it
                    self.parser.start_next_cycle()
                return status, body
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError("the server closed the connection")

    def said(self) -> list[bytes]:
        """The last response's `connection` header values."""
        return [value for name, value in self.headers if name == b"connection"]

    def close(self) -> None:
        self.sock.close()


def answer(body: bytes) -> tuple[list[int], str, str]:
    """A chat stream's ids, its deltas' text joined, and its complete event's text."""
    events = [m for m in Decoder().feed(body) if m.event != "message"]
    deltas = "".join(orjson.loads(m.data)["text"] for m in events if m.event == "delta")
    (complete,) = [orjson.loads(m.data) for m in events if m.event == "complete"]
    return [int(m.id or 0) for m in events], deltas, complete["text"]


TEXT = " ".join(f"word{i}" for i in range(20))


def test_after_a_stream_its_connection_serves_the_next_request(scripted: Server) -> None:
    connection = Connection(scripted)
    try:
        for _ in range(2):  # the connection taken back after a stream can be taken again
            connection.send(post_chat({"text": TEXT}))
            status, body = connection.response()
            assert status == 200
            _, deltas, complete = answer(body)
            assert deltas == complete == TEXT
            assert connection.said() == []  # HTTP/1.1 keeps it: nothing says otherwise
            connection.send(GET_HEALTH)
            status, body = connection.response()
            assert status == 200
            assert orjson.loads(body)["status"] == "ok"
    finally:
        connection.close()


def test_a_stream_asked_to_close_its_connection_says_so_once_and_closes_it(
    scripted: Server,
) -> None:
    connection = Connection(scripted)
    try:
        connection.send(post_chat({"text": TEXT}, close=True))
        status, body = connection.response()
        assert status == 200
        assert answer(body)[1] == TEXT
        assert connection.said() == [b"close"]
        assert connection.sock.recv(1) == b""  # closed by the server after the response
    finally:
        connection.close()


@pytest.mark.parametrize("when", ["in the same packet", "while it streams"])
def test_a_request_pipelined_behind_a_stream_is_answered_after_it(
    scripted: Server, when: str
) -> None:
    connection = Connection(scripted)
    try:
        chat = post_chat({"text": TEXT, "delay": 0.01})
        if when == "in the same packet":
            connection.send(chat + GET_HEALTH)
        else:
            connection.send(chat)
            time.sleep(0.1)  # a few deltas in
            connection.send(GET_HEALTH)
        status, body = connection.response()
        assert status == 200
        _, deltas, _ = answer(body)
        assert deltas == TEXT
        status, body = connection.response()
        assert status == 200
        assert orjson.loads(body)["status"] == "ok"
    finally:
        connection.close()


def test_a_client_that_reads_slowly_gets_every_event_in_order(scripted: Server) -> None:
    # About 6 MB of events, more than the kernel's buffers on both sides take (its send
    # buffer grows to 4 MB here): the server's transport fills, and the stream must stop
    # listening and catch up from the log once the client reads on.
    words = 150_000
    text = " ".join("w" for _ in range(words))
    connection = Connection(scripted, receive_buffer=4096)
    try:
        connection.send(post_chat({"text": text}))
        time.sleep(2)  # the model has finished long before the client reads
        status, body = connection.response()
    finally:
        connection.close()
    assert status == 200
    ids, deltas, complete = answer(body)
    assert ids == list(range(1, len(ids) + 1))  # none lost, none repeated
    assert deltas == complete == text
    assert len(ids) > words
