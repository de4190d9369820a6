"""The canonical dialect: `id:` is the run's seq, `event:` the type, `data:` the event as JSON.

This is the hot path of every stream, so the message is formatted directly: orjson never
emits a raw newline, which makes the one-`data:`-line form the correct SSE encoding
(`sse.encode` would produce the same bytes; the test suite checks that it does).
A delta's text is quoted (`dialects.quote`) into an f-string: the same bytes as `orjson.dumps`
of the text, in about half the time of `bytes %` with orjson.

It is also how the in-memory event log keeps a run (`Frames`): each event is rendered once, as
it is logged, and a replay in this dialect sends the log's bytes as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar, overload

import orjson

from ssechat.dialects import quote, register_dialect
from ssechat.events import EVENT_TYPES, Delta, Event, dumps, loads

# "\nevent: <type>\ndata: " for every type, encoded once.
_HEADS = {name: b"\nevent: %s\ndata: " % name.encode() for name in EVENT_TYPES}


def _delta(seq: int, text: str) -> bytes:
    """A delta given as its text: `dumps(Delta(text))` inlined."""
    return f'id: {seq}\nevent: delta\ndata: {{"text":{quote(text)}}}\n\n'.encode()


def _event(seq: int, event: Event) -> bytes:
    if type(event) is Delta:
        return _delta(seq, event.text)
    return message(seq, event.type, dumps(event))


def message(seq: int, type_: str, payload: bytes) -> bytes:
    """The message of an event given as its type and `data:` payload (`events.dumps`)."""
    return b"id: %d%s%s\n\n" % (seq, _HEADS[type_], payload)


def encode(seq: int, item: Event | str) -> bytes:
    """The message of a log item: an event, or a delta kept as its text."""
    return _delta(seq, item) if type(item) is str else _event(seq, item)  # type: ignore[arg-type]


def decode(data: bytes) -> list[Event | str]:
    """The log items whose messages `data` holds, in order, every delta as its text.

    A raw blank line ends each message and occurs nowhere else: no message of this dialect
    has a newline in a field."""
    items: list[Event | str] = []
    for one in data.split(b"\n\n")[:-1]:
        kind, _, payload = one.partition(b"\nevent: ")[2].partition(b"\ndata: ")
        items.append(
            orjson.loads(payload)["text"] if kind == b"delta" else loads(kind.decode(), payload)
        )
    return items


class Frames(Sequence[Event | str]):
    """Log items held as this dialect's messages, joined: `data`, and `len()` of them.

    The in-memory log keeps a run this way and reads hand it out as a batch's items: a replay
    in this dialect sends `data` as it is, and a replay in any other reads the items, parsed
    back from `data` on first use."""

    __slots__ = ("_items", "_len", "data")

    def __init__(self, data: bytes, length: int) -> None:
        self.data = data
        self._len = length
        self._items: list[Event | str] | None = None

    def items(self) -> list[Event | str]:
        if self._items is None:
            self._items = decode(self.data)
        return self._items

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> Event | str: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event | str]: ...
    def __getitem__(self, index: int | slice) -> Event | str | list[Event | str]:
        return self.items()[index]

    def __iter__(self) -> Iterator[Event | str]:
        return iter(self.items())

    def __add__(self, other: Frames) -> Frames:
        return Frames(self.data + other.data, self._len + other._len)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frames):
            return self.data == other.data
        return isinstance(other, Sequence) and self.items() == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Frames({self._len} items, {len(self.data)} bytes)"


class CanonicalRenderer:
    __slots__ = ()

    # Renders exactly what the in-memory log keeps: a stream in this dialect is handed the
    # log's message for each event, not rendering it again (see `runs.Subscription`).
    canonical: ClassVar[bool] = True

    render = staticmethod(_event)
    render_text = staticmethod(_delta)

    def render_items(self, first: int, items: Sequence[Event | str]) -> bytes:
        """A replay's batch: as the in-memory log keeps it (`Frames`, every read of ours),
        else each item rendered in turn."""
        if type(items) is Frames:
            return items.data
        return b"".join([encode(seq, item) for seq, item in enumerate(items, first)])


register_dialect("ssechat")(CanonicalRenderer)
