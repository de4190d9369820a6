"""The canonical dialect: `id:` is the run's seq, `event:` the type, `data:` the event as JSON.

This is the hot path of every stream, so the message is formatted directly: orjson never
emits a raw newline, which makes the one-`data:`-line form the correct SSE encoding
(`sse.encode` would produce the same bytes; the test suite checks that it does).
"""

from __future__ import annotations

import orjson

from ssechat.dialects import register_dialect
from ssechat.events import EVENT_TYPES, Delta, Event, dumps

# "\nevent: <type>\ndata: " for every type, encoded once.
_HEADS = {name: b"\nevent: %s\ndata: " % name.encode() for name in EVENT_TYPES}
# A delta, the event of almost every message, in one format: `dumps(Delta(text))` inlined.
_DELTA = b'id: %d\nevent: delta\ndata: {"text":%s}\n\n'


def _delta(seq: int, text: str) -> bytes:
    return _DELTA % (seq, orjson.dumps(text))


class CanonicalRenderer:
    __slots__ = ()

    def render(self, seq: int, event: Event) -> bytes:
        if type(event) is Delta:
            return _delta(seq, event.text)
        return b"id: %d%s%s\n\n" % (seq, _HEADS[event.type], dumps(event))

    render_text = staticmethod(_delta)


register_dialect("ssechat")(CanonicalRenderer)
