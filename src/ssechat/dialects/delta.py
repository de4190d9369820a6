"""Seed 004's dialect (`POST /api/v1/chat/stream`): a snapshot, then `{"delta", "done"}` messages.

    event: snapshot
    data: {…the conversation, with its messages…}

    data: {"delta": "Hello", "done": false}
    data: {"delta": "", "done": true}

The snapshot is what the route read from the store when the run started (the conversation as
`GET /v1/conversations/{id}` shows it, plus `run_id` and the client's `metadata`); asked for
elsewhere with `?format=delta`, it is the run's `start` fields. Every later message has `delta`
and `done`, so a client that appends `delta` until `done` never appends anything else: an event
with no text (status, sources, SQL, table, CSV, follow-ups, metadata) rides along under its
canonical type next to `"delta": ""`, and an error ends the stream as `{"delta": "", "done":
true, "error": {"code", "message"}}` (the seed's error shape was never written down). No
`retry:` preamble (the seed sent none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssechat.dialects import TEXT_MARK, TextTemplate, Wire, frame, register_dialect
from ssechat.events import Complete, Delta, Error, Event, Start

_DELTA = TextTemplate(frame({"delta": TEXT_MARK, "done": False}))


class DeltaRenderer:
    __slots__ = ("_snapshot",)
    wire = Wire(retry=False)

    def __init__(self, *, snapshot: Mapping[str, Any] | None = None) -> None:
        self._snapshot = snapshot

    @staticmethod
    def render_text(seq: int, text: str) -> bytes:
        return _DELTA.fill(text) if text else b""

    def render(self, seq: int, event: Event) -> bytes:
        if isinstance(event, Start):
            snapshot = self._snapshot
            if snapshot is None:
                snapshot = {
                    "conversation_id": event.conversation_id,
                    "run_id": event.run_id,
                    "message_id": event.message_id,
                    "model": event.model,
                    "created_at": event.created_at,
                }
            return frame(snapshot, event="snapshot")
        if isinstance(event, Delta):
            return self.render_text(seq, event.text)
        if isinstance(event, Complete):
            return frame({"delta": "", "done": True})
        if isinstance(event, Error):
            error = {"code": event.code, "message": event.message}
            return frame({"delta": "", "done": True, "error": error})
        return frame({"delta": "", "done": False, event.type: event})


register_dialect("delta")(DeltaRenderer)
