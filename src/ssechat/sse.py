"""Server-Sent Events wire codec: pure functions and a state machine, no I/O.

The decoder implements the WHATWG HTML Standard, section 9.2.6 "Interpreting an event
stream" (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
Comments quoting "spec:" refer to that section.

Round-trip contract: decoding ``encode(data=d, event=e, id=i, retry=r)`` yields
``ServerSentEvent(data=d', event=e or "message", id=i if i is not None else <previous id>,
retry=r)`` where ``d'`` is ``d`` with every ``\\r\\n`` and lone ``\\r`` replaced by ``\\n``:
the wire cannot tell line-end styles apart inside data.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass

__all__ = ["Decoder", "ServerSentEvent", "decode", "encode"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event.

    When produced by :class:`Decoder`, ``event`` is never ``None`` (the default type is
    ``"message"``) and ``id`` is the decoder's last-event-id buffer at dispatch time, which
    persists across events and is ``""`` if never set. ``retry`` is the valid ``retry``
    value (milliseconds) given in this event's own block, else ``None``.
    """

    data: str = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None


def _lines(text: str) -> list[str]:
    # Not str.splitlines(): it also splits on \v, \f, \x1c-\x1e, \x85, \u2028, \u2029,
    # which SSE treats as ordinary characters.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def encode(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,  # shadows the builtin: the SSE field is called "id"
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """Encode one event (or a comment) as UTF-8 bytes, terminated by a blank line.

    Lines are written as ``field: value`` (one space, which the decoder strips, so values
    starting with a space survive) in the order: comment lines, ``id``, ``event``,
    ``retry``, ``data``. Multi-line ``data`` or ``comment`` (split on CRLF, CR or LF) gives
    one line per line. ``data=""`` is sent as ``data: `` and is dispatched by clients with
    empty data; with ``data=None`` clients dispatch nothing (but still apply ``id`` and
    ``retry``), so ``encode(comment="ping") == b": ping\\n\\n"`` is a keep-alive.

    Raises ValueError if ``event`` or ``id`` contains CR or LF (it would end the line early),
    if ``id`` contains NUL (clients ignore such ids), if ``retry`` is not a non-negative
    int, or if nothing at all is given (UnicodeEncodeError, a ValueError, for lone
    surrogates).
    """
    # Hot path (one call per streamed token): a single-line data-only event.
    if event is None and id is None and retry is None and comment is None:
        if data is None:
            raise ValueError("nothing to encode")
        if "\n" not in data and "\r" not in data:
            return f"data: {data}\n\n".encode()

    parts: list[str] = []
    if comment is not None:
        parts.extend(f": {line}\n" for line in _lines(comment))
    if id is not None:
        if "\r" in id or "\n" in id or "\0" in id:
            raise ValueError(f"SSE id must not contain CR, LF or NUL: {id!r}")
        parts.append(f"id: {id}\n")
    if event is not None:
        if "\r" in event or "\n" in event:
            raise ValueError(f"SSE event must not contain CR or LF: {event!r}")
        parts.append(f"event: {event}\n")
    if retry is not None:
        # bool is an int subclass; "retry: True" would not be all digits.
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ValueError(f"SSE retry must be a non-negative int: {retry!r}")
        parts.append(f"retry: {retry}\n")
    if data is not None:
        parts.extend(f"data: {line}\n" for line in _lines(data))
    parts.append("\n")
    return "".join(parts).encode()


class Decoder:
    """Incremental decoder: feed bytes chunks, get completed events.

    Chunks may be cut anywhere: inside a CRLF, inside a UTF-8 character, inside the BOM.
    Only the unfinished last line is buffered. There is no ``flush()``: spec: an event
    without its terminating blank line at the end of the stream is discarded.
    """

    __slots__ = (
        "_bom_done",
        "_data",
        "_event",
        "_event_retry",
        "_head",
        "_last_id",
        "_retry",
        "_skip_lf",
        "_tail",
    )

    def __init__(self) -> None:
        self._bom_done = False
        self._head = b""  # first bytes, held until we know whether they are a BOM
        self._tail: list[bytes] = []  # pieces of the unfinished line (no CR/LF in them)
        self._skip_lf = False  # previous chunk ended in CR: a leading LF completes a CRLF
        self._data: list[str] = []  # data buffer as lines; empty list == empty buffer
        self._event = ""  # event type buffer
        self._last_id = ""  # last event ID buffer: survives dispatch
        self._retry: int | None = None  # reconnection time
        self._event_retry: int | None = None  # retry seen since the last blank line

    @property
    def last_event_id(self) -> str:
        """The last event ID buffer ("" if never set); persists across events."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The last valid ``retry`` value seen (milliseconds), or None."""
        return self._retry

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume a chunk of the stream; return the events it completed, in order."""
        if not self._bom_done:
            # spec: the stream is decoded with "UTF-8 decode", which drops one leading BOM.
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return []
            self._bom_done, self._head = True, b""
            chunk = head[3:] if head.startswith(_BOM) else head
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]

        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:
            # No line end: just remember the piece. Joining only once a line completes
            # keeps a long line arriving in many chunks linear, not quadratic.
            if chunk:
                self._tail.append(chunk)
            return []
        rest = chunk[end + 1 :]
        self._tail.append(chunk[: end + 1])
        block = b"".join(self._tail)
        self._tail = [rest] if rest else []
        # A CR as the very last byte may be the first half of a CRLF cut by the chunking.
        self._skip_lf = not rest and chunk[end] == 0x0D

        # CR and LF never occur inside a UTF-8 multibyte sequence, so decoding whole lines
        # equals decoding the whole stream (incl. U+FFFD replacement of invalid bytes).
        lines = _lines(block.decode("utf-8", "replace"))
        lines.pop()  # the empty string after the final line end
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[0] != ":":  # spec: lines starting with ":" are comments
                self._field(*line.partition(":")[::2])
        return events

    def _field(self, name: str, value: str) -> None:
        # spec: no colon -> whole line is the name, value is ""; else strip one leading space.
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:  # spec: ids containing NUL are ignored
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            # spec: only a non-empty string of ASCII digits sets the reconnection time.
            # int() refuses more than sys.get_int_max_str_digits() digits: ignore, don't crash.
            with suppress(ValueError):
                self._retry = self._event_retry = int(value)
        # spec: any other field is ignored.

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._event_retry
        self._data, self._event, self._event_retry = [], "", None
        if not data:
            # spec: empty data buffer -> reset buffers, dispatch nothing.
            return None
        # "\n".join == concatenating value+"\n" per line, then dropping the final "\n".
        return ServerSentEvent(
            data="\n".join(data), event=event or "message", id=self._last_id, retry=retry
        )


def decode(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    """Feed all ``chunks`` to a new :class:`Decoder` and return every event dispatched."""
    decoder = Decoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events
