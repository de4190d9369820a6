"""Seed 001's dialect (`POST /api/chat/stream`, `POST /chat/stream`): unnamed messages told apart
by their one key, then `data: [DONE]`.

    data: {"stage": …}                 data: {"sources": [{chunk_id, document_name, text, score}]}
    data: {"token": …}                 data: {"quality_score": …}
    data: {"follow_up_questions": […]} data: {"metadata": {…}}
    data: {"error": …}                 data: [DONE]

The seed's client routes each message by which keys it has, so every message here has exactly
one of them. `quality_score` is the number under `score` in the pipeline's `metadata.quality`
(else its first number) and is left out when there is none. Sources keep the seed's field names
and add ssechat's `uri` and `metadata`. Divergences: `stage` values are ssechat's stage names
(`retrieving`, `generating`, …), not the seed's LangGraph node names; an error also carries
`code`; SQL, table and CSV events, which the seed never had, go out as `{"sql"}`, `{"table"}`
and `{"csv"}`, keys its client ignores. `[DONE]` follows an error too, as the design's table
says, so every stream ends the same way. Nothing marks the start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from ssechat.dialects import DONE, TEXT_MARK, TextTemplate, Wire, frame, register_dialect
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
    Status,
    Table,
)

_TOKEN = TextTemplate(frame({"token": TEXT_MARK}))


class KeyedRenderer:
    __slots__ = ()
    wire = Wire(retry=False)

    @staticmethod
    def render_text(seq: int, text: str) -> bytes:
        return _TOKEN.fill(text) if text else b""

    def render(self, seq: int, event: Event) -> bytes:
        if isinstance(event, Delta):
            return self.render_text(seq, event.text)
        if isinstance(event, Status):
            return frame({"stage": event.stage})
        if isinstance(event, Sources):
            return frame(
                {
                    "sources": [
                        {
                            "chunk_id": s.id,
                            "document_name": s.title,
                            "text": s.text,
                            "score": s.score,
                            "uri": s.uri,
                            "metadata": s.metadata,
                        }
                        for s in event.sources
                    ]
                }
            )
        if isinstance(event, Followups):
            return frame({"follow_up_questions": event.questions})
        if isinstance(event, Metadata):
            return _metadata(event)
        if isinstance(event, Sql):
            return frame({"sql": event.sql})
        if isinstance(event, Table):
            return frame({"table": event})
        if isinstance(event, Csv):
            return frame({"csv": event})
        if isinstance(event, Complete):
            return DONE
        if isinstance(event, Error):
            return frame({"error": event.message, "code": event.code}) + DONE
        return b""


def _metadata(event: Metadata) -> bytes:
    score = quality_score(event.quality)
    head = frame({"quality_score": score}) if score is not None else b""
    return head + frame(
        {
            "metadata": {
                "model": event.model,
                "usage": event.usage,
                "timings": event.timings,
                "quality": event.quality,
            }
        }
    )


def quality_score(quality: Mapping[str, Any] | None) -> float | None:
    """The one number that stands for a pipeline's `quality`: its `score`, else its first
    number; None when it has none."""
    if not quality:
        return None
    numbers = [v for v in quality.values() if _is_number(v)]
    score = quality.get("score")
    if _is_number(score):
        numbers.insert(0, score)
    return float(numbers[0]) if numbers else None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


register_dialect("keyed")(KeyedRenderer)
