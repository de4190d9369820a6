"""The Vercel AI SDK's UI message stream, protocol v1 (`POST /api/chat`), as read by the `ai`
package's `DefaultChatTransport` and `readUIMessageStream`: one JSON chunk per `data:`, ending
with `data: [DONE]`, under the response header `x-vercel-ai-ui-message-stream: v1`.

    start (messageId, messageMetadata {conversation_id, run_id, model, pipeline}), start-step
    status              → data-status {stage, detail}, transient (not kept in the message)
    delta               → text-start (when no text part is open), text-delta {id, delta}
    sources             → source-url {sourceId, url, title} when a source has a uri, else
                          source-document {sourceId, mediaType: "text/plain", title}
    sql/table/csv/followups → data-sql, data-table, data-csv, data-followups (canonical fields)
    metadata            → message-metadata {model, usage, timings, quality}
    complete            → text-end, finish-step, finish {messageMetadata {finish_reason}}
    error               → text-end, error {errorText}
    error `cancelled`   → text-end, abort

A text part is closed before any other part so the message's parts keep the run's order; its
id is `text-<seq of its first delta>`, unique within the message even for a client that joined
late. Only fields that every v1 reader accepts are sent: `ai` 5.0's chunk schemas were strict
objects, without `finish.finishReason` or `abort.reason` (added later), so the finish reason
travels in `finish.messageMetadata` instead. No `retry:` preamble (the SDK's own streams have
none).
"""

from __future__ import annotations

from typing import Any

from ssechat.dialects import DONE, TEXT_MARK, TextTemplate, Wire, frame, register_dialect
from ssechat.events import (
    Complete,
    Csv,
    Delta,
    Error,
    Event,
    Followups,
    Metadata,
    Source,
    Sources,
    Sql,
    Start,
    Status,
    Table,
)

HEADER = ("x-vercel-ai-ui-message-stream", "v1")


class AiSdkRenderer:
    __slots__ = ("_delta", "_text")
    wire = Wire(retry=False, headers=(HEADER,))

    def __init__(self) -> None:
        self._text: str | None = None  # id of the open text part
        self._delta: TextTemplate | None = None  # the open part's text-delta

    def render(self, seq: int, event: Event) -> bytes:
        if isinstance(event, Start):
            metadata = {
                "conversation_id": event.conversation_id,
                "run_id": event.run_id,
                "model": event.model,
                "pipeline": event.pipeline,
            }
            return frame(
                {"type": "start", "messageId": event.message_id, "messageMetadata": metadata}
            ) + frame({"type": "start-step"})
        if isinstance(event, Delta):
            return self.render_text(seq, event.text)
        if isinstance(event, Status):
            data = {"stage": event.stage, "detail": event.detail}
            return frame({"type": "data-status", "data": data, "transient": True})
        if isinstance(event, Metadata):
            details: dict[str, Any] = {
                "model": event.model,
                "usage": event.usage,
                "timings": event.timings,
                "quality": event.quality,
            }
            return frame({"type": "message-metadata", "messageMetadata": details})
        closed = self._close_text()
        if isinstance(event, Sources):
            return closed + b"".join(frame(_source(s)) for s in event.sources)
        if isinstance(event, Sql | Table | Csv | Followups):
            return closed + frame({"type": f"data-{event.type}", "data": event})
        if isinstance(event, Complete):
            finish = {"finish_reason": event.finish_reason}
            return (
                closed
                + frame({"type": "finish-step"})
                + frame({"type": "finish", "messageMetadata": finish})
                + DONE
            )
        if isinstance(event, Error):
            if event.code == "cancelled":
                return closed + frame({"type": "abort"}) + DONE
            return closed + frame({"type": "error", "errorText": event.message}) + DONE
        return closed

    def render_text(self, seq: int, text: str) -> bytes:
        if not text:
            return b""
        opened = b""
        if self._text is None:
            self._text = f"text-{seq}"
            opened = frame({"type": "text-start", "id": self._text})
            delta = {"type": "text-delta", "id": self._text, "delta": TEXT_MARK}
            self._delta = TextTemplate(frame(delta))
        assert self._delta is not None  # made with the part
        return opened + self._delta.fill(text)

    def _close_text(self) -> bytes:
        if self._text is None:
            return b""
        text, self._text = self._text, None
        return frame({"type": "text-end", "id": text})


def _source(source: Source) -> dict[str, Any]:
    if source.uri:
        return {
            "type": "source-url",
            "sourceId": source.id,
            "url": source.uri,
            "title": source.title,
        }
    return {
        "type": "source-document",
        "sourceId": source.id,
        "mediaType": "text/plain",
        "title": source.title,
    }


register_dialect("ai-sdk")(AiSdkRenderer)
