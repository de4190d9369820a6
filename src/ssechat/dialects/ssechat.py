"""The canonical dialect: `id:` is the run's seq, `event:` the type, `data:` the event as JSON.

This is the hot path of every stream, so the message is formatted directly: orjson never
emits a raw newline, which makes the one-`data:`-line form the correct SSE encoding
(`sse.encode` would produce the same bytes; the test suite checks that it does).
"""

from __future__ import annotations

from ssechat.dialects import register_dialect
from ssechat.events import EVENT_TYPES, Event, dumps

# "\nevent: <type>\ndata: " for every type, encoded once.
_HEADS = {name: b"\nevent: %s\ndata: " % name.encode() for name in EVENT_TYPES}


class CanonicalRenderer:
    __slots__ = ()

    def render(self, seq: int, event: Event) -> bytes:
        return b"id: %d%s%s\n\n" % (seq, _HEADS[event.type], dumps(event))


register_dialect("ssechat")(CanonicalRenderer)
