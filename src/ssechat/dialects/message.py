"""Seed 002's dialect (`GET /api/chat/stream?message=`, `POST /api/chat/message`): named events
for a browser `EventSource`.

    event: connected  data: {"status": "connected"}
    event: message    data: {"type": "text", "content": …, "timestamp": …}   (one per update)
    event: done       data: {"status": "complete"}
    event: error      data: {"error": …}

The seed's updates were its agent's `SSEFormatter` dicts, so answer text is `{"type": "text",
"content"}`, a stage is `{"type": "specialist_update", "specialist": <pipeline>, "status":
<stage>}` and the SQL the model wrote is `{"type": "tool_call", "tool": "run_sql",
"arguments": {"sql", "dialect"}}`; every other event is `{"type": <canonical type>, …its
fields}`. Each update is stamped with the time it is rendered (`now`, injectable for tests),
as the seed's were; replays get the time of the replay.

`id:` makes resume work for an `EventSource`, which reconnects by itself carrying the last id:
with `id_prefix=""` the id is the run's seq (for `/v1/runs/{id}/events?format=message`); the
seed's GET route, whose URL does not name the run, uses `id_prefix="<run_id>:"` so the
reconnect finds it; `id_prefix=None` sends no ids. `lifecycle=False` drops `connected`, `done`
and the `retry:` preamble, as the seed's POST variant sent only `message` events (its fetch
client hands every `data:` to one callback).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ssechat.dialects import DEFAULT_WIRE, Wire, frame, register_dialect
from ssechat.events import Complete, Delta, Error, Event, Sql, Start, Status


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MessageRenderer:
    __slots__ = ("_id_prefix", "_lifecycle", "_now", "_pipeline")

    def __init__(
        self,
        *,
        id_prefix: str | None = "",
        lifecycle: bool = True,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._id_prefix = id_prefix
        self._lifecycle = lifecycle
        self._now = now
        self._pipeline = "ssechat"  # until `start` names the run's pipeline

    @property
    def wire(self) -> Wire:
        # `retry:` is for an EventSource; the POST variant's readers are fetch loops.
        return DEFAULT_WIRE if self._lifecycle else Wire(retry=False)

    def render(self, seq: int, event: Event) -> bytes:
        id_ = None if self._id_prefix is None else f"{self._id_prefix}{seq}"
        if isinstance(event, Start):
            self._pipeline = event.pipeline
            if not self._lifecycle:
                return b""
            return frame(
                {
                    "status": "connected",
                    "run_id": event.run_id,
                    "conversation_id": event.conversation_id,
                },
                event="connected",
                id=id_,
            )
        if isinstance(event, Complete):
            if not self._lifecycle:
                return b""
            return frame({"status": "complete"}, event="done", id=id_)
        if isinstance(event, Error):
            return frame({"error": event.message, "code": event.code}, event="error", id=id_)
        payload = update(event, pipeline=self._pipeline, timestamp=self._now().isoformat())
        return frame(payload, event="message", id=id_) if payload else b""


def update(event: Event, *, pipeline: str, timestamp: str) -> dict[str, Any] | None:
    """The seed's `message` payload for a non-terminal event; None when there is nothing to say."""
    if isinstance(event, Delta):
        if not event.text:
            return None
        return {"type": "text", "content": event.text, "timestamp": timestamp}
    if isinstance(event, Status):
        return {
            "type": "specialist_update",
            "specialist": pipeline,
            "status": event.stage,
            "detail": event.detail,
            "timestamp": timestamp,
        }
    if isinstance(event, Sql):
        return {
            "type": "tool_call",
            "tool": "run_sql",
            "arguments": {"sql": event.sql, "dialect": event.dialect},
            "timestamp": timestamp,
        }
    if isinstance(event, Start | Complete | Error):
        return None
    return {"type": event.type, **asdict(event), "timestamp": timestamp}


def message_body(
    events: Sequence[Event], *, now: Callable[[], datetime] = _utc_now
) -> dict[str, Any]:
    """The JSON answer of `POST /api/chat/message` asked for `application/json`: the whole
    answer and the updates its stream would have carried."""
    start = next((e for e in events if isinstance(e, Start)), None)
    complete = next((e for e in events if isinstance(e, Complete)), None)
    pipeline = start.pipeline if start else "ssechat"
    timestamp = now().isoformat()
    updates = [u for e in events if (u := update(e, pipeline=pipeline, timestamp=timestamp))]
    return {
        "run_id": start.run_id if start else None,
        "conversation_id": start.conversation_id if start else None,
        "message_id": complete.message_id if complete else None,
        "content": complete.text if complete else "",
        "updates": updates,
    }


register_dialect("message")(MessageRenderer)
