"""Seed 003's dialect (`POST /chat/{session_id}/stream`): unnamed messages with a `type`.

    data: {"type": "start", "session_id": 1, "model": …}
    data: {"type": "status", "content": "Generating response..."}
    data: {"type": "sources", "content": [{text, score, metadata}], "chunks_used": n}
    data: {"type": "chunk", "content": …}
    data: {"type": "metadata", "content": {model, confidence, hallucination, …,
           "total_response": …}}
    data: {"type": "done"}
    data: {"type": "error", "content": …}

`session_id` is the route's path segment (a number when it is one, as in the seed), or the
conversation id when the format is asked for elsewhere. Stages become the seed's sentences
where it had one (a stage's own `detail` wins). `metadata` is held back until the run
completes so its `total_response` is the whole answer even for a client that joined late; its
`confidence` is the pipeline's quality score (see `keyed.quality_score`) and `hallucination` is
always null: ssechat computes no such thing. Divergences: sources also carry id, title and uri;
SQL, table, CSV and follow-ups, which the seed never had, go out as `{"type": <canonical type>,
"content": {…}}`; an error also carries `code`. No `retry:` preamble (the seed sent none).
"""

from __future__ import annotations

from ssechat.dialects import TEXT_MARK, TextTemplate, Wire, frame, register_dialect
from ssechat.dialects.keyed import quality_score
from ssechat.events import (
    Complete,
    Csv,
    Delta,
    Error,
    Event,
    Followups,
    Metadata,
    Sources,
    Sql,
    Start,
    Status,
    Table,
)

STAGE_TEXT = {
    "retrieving": "Searching documents...",
    "generating": "Generating response...",
    "generating_sql": "Writing SQL...",
    "running_sql": "Running SQL...",
}

_CHUNK = TextTemplate(frame({"type": "chunk", "content": TEXT_MARK}))


class TypedRenderer:
    __slots__ = ("_metadata", "_session_id")
    wire = Wire(retry=False)

    def __init__(self, *, session_id: int | str | None = None) -> None:
        self._session_id = session_id
        self._metadata: Metadata | None = None

    @staticmethod
    def render_text(seq: int, text: str) -> bytes:
        return _CHUNK.fill(text) if text else b""

    def render(self, seq: int, event: Event) -> bytes:
        if isinstance(event, Start):
            session = self._session_id if self._session_id is not None else event.conversation_id
            return frame({"type": "start", "session_id": session, "model": event.model})
        if isinstance(event, Delta):
            return self.render_text(seq, event.text)
        if isinstance(event, Status):
            text = event.detail or STAGE_TEXT.get(event.stage, event.stage)
            return frame({"type": "status", "content": text})
        if isinstance(event, Sources):
            content = [
                {
                    "text": s.text,
                    "score": s.score,
                    "metadata": s.metadata,
                    "id": s.id,
                    "title": s.title,
                    "uri": s.uri,
                }
                for s in event.sources
            ]
            return frame({"type": "sources", "content": content, "chunks_used": len(content)})
        if isinstance(event, Sql | Table | Csv | Followups):
            return frame({"type": event.type, "content": event})
        if isinstance(event, Metadata):
            self._metadata = event
            return b""
        if isinstance(event, Complete):
            return self._final_metadata(event) + frame({"type": "done"})
        if isinstance(event, Error):
            return frame({"type": "error", "content": event.message, "code": event.code})
        return b""

    def _final_metadata(self, complete: Complete) -> bytes:
        meta = self._metadata
        if meta is None:
            return b""
        return frame(
            {
                "type": "metadata",
                "content": {
                    "model": meta.model,
                    "confidence": quality_score(meta.quality),
                    "hallucination": None,
                    "usage": meta.usage,
                    "timings": meta.timings,
                    "quality": meta.quality,
                    "total_response": complete.text,
                },
            }
        )


register_dialect("typed")(TypedRenderer)
