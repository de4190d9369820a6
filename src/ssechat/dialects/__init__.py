"""Dialects: pure translations of canonical events into a client's wire format.

A dialect is a factory for a `Renderer`, made once per response (some formats number their
own messages or remember what they have opened); `render` turns one logged event into the
bytes to send, possibly none. A renderer may also have `render_text(seq, text)`, the same bytes
as `render(seq, Delta(text))`: a replay hands it the log's deltas as they are kept, as text,
and makes no event per delta (`text_renderer`); and `render_items(first, items)`, the same bytes
as rendering each of a run of log items in turn, for a replay's batch (`render_items`). A
renderer that says `canonical = True` (the canonical dialect's) renders exactly the messages
the in-memory log keeps, and is handed them instead of rendering again. A dialect's
`render_text` is its hot path (every token of every stream): the JSON formats build a delta's
message once, with `TEXT_MARK` as its text (`TextTemplate`), and only quote each token into
it. Dialects never see the model, the run or the socket.

Called with no arguments a dialect renders for any route (`?format=`); the routes that speak a
dialect natively may pass it keyword options known only per response (seed 004's snapshot,
OpenAI's `include_usage`). A renderer may also declare a `wire: Wire` for what its format asks
of the response around the events: OpenAI's SDK, for one, chokes on a `retry:` field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Protocol

import orjson

from ssechat.events import Delta, Event

# The JSON string orjson writes for a text, for every code point: the json module's C
# encoder, which keeps non-ASCII as it is. Into an f-string it costs about half of orjson's
# bytes and `bytes %` formatting. A lone surrogate raises with both.
quote: Callable[[str], str] = encode_basestring
# Stands for a delta's text in a `TextTemplate`'s message: a NUL is in no id or name.
TEXT_MARK = "\x00ssechat-text\x00"
_MARK_JSON = quote(TEXT_MARK)


class Renderer(Protocol):
    def render(self, seq: int, event: Event) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Wire:
    """What a format needs of its HTTP response besides the rendered events."""

    # Send the SSE `retry:` preamble. Only EventSource clients use it; hand-written parsers of
    # formats that never had one may take its block for a message (openai-python does).
    retry: bool = True
    headers: tuple[tuple[str, str], ...] = ()


DEFAULT_WIRE = Wire()
DONE = b"data: [DONE]\n\n"


def wire_of(renderer: Renderer) -> Wire:
    """The renderer's `wire`, or the default (a `retry:` preamble, no extra headers)."""
    wire = getattr(renderer, "wire", DEFAULT_WIRE)
    return wire if isinstance(wire, Wire) else DEFAULT_WIRE


def text_renderer(renderer: Renderer) -> Callable[[int, str], bytes]:
    """How `renderer` renders a delta given as its text: its `render_text`, else its `render`
    of the Delta."""
    render_text = getattr(renderer, "render_text", None)
    if render_text is not None:
        return render_text  # type: ignore[no-any-return]
    render = renderer.render
    return lambda seq, text: render(seq, Delta(text))


def render_items(renderer: Renderer, first: int, items: Sequence[Event | str]) -> bytes:
    """Log items numbered from seq `first` (a delta kept as its text) rendered in one go: by
    the renderer's `render_items`, else each in turn."""
    batch = getattr(renderer, "render_items", None)
    if batch is not None:
        return batch(first, items)  # type: ignore[no-any-return]
    render, render_text = renderer.render, text_renderer(renderer)
    return b"".join(
        [
            render_text(seq, item) if isinstance(item, str) else render(seq, item)
            for seq, item in enumerate(items, first)
        ]
    )


class TextTemplate:
    """A message rendered once with `TEXT_MARK` as its text: `fill(text)` is that message with
    `text`, byte for byte as if rendered with it, for the cost of quoting the text."""

    __slots__ = ("after", "before")

    def __init__(self, message: bytes) -> None:
        before, mark, after = message.decode().partition(_MARK_JSON)
        if not mark:
            raise ValueError("the message does not contain TEXT_MARK")
        self.before, self.after = before, after

    def fill(self, text: str) -> bytes:
        return f"{self.before}{quote(text)}{self.after}".encode()


def frame(data: Any, *, event: str | None = None, id: str | None = None) -> bytes:
    """One SSE message whose data is `data` as compact JSON.

    orjson never writes a raw newline, so a single `data:` line is the correct encoding; `event`
    and `id` come from the dialect's own vocabulary and never contain one either."""
    head = (f"id: {id}\n" if id is not None else "") + (
        f"event: {event}\n" if event is not None else ""
    )
    return b"%sdata: %s\n\n" % (head.encode(), orjson.dumps(data))


Dialect = Callable[[], Renderer]
_DIALECTS: dict[str, Dialect] = {}


def register_dialect(name: str) -> Callable[[Dialect], Dialect]:
    def decorate(dialect: Dialect) -> Dialect:
        _DIALECTS[name] = dialect
        return dialect

    return decorate


def get_dialect(name: str) -> Dialect:
    """The dialect registered as `name`; `KeyError` if there is none."""
    _load_builtins()
    return _DIALECTS[name]


def dialect_names() -> list[str]:
    _load_builtins()
    return sorted(_DIALECTS)


def _load_builtins() -> None:
    # Each module registers itself.
    from ssechat.dialects import (  # noqa: F401
        ai_sdk,
        delta,
        keyed,
        message,
        openai,
        ssechat,
        typed,
        vanna,
    )
