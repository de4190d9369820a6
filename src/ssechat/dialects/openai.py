"""OpenAI Chat Completions (`POST /v1/chat/completions`): `chat.completion.chunk` objects and
`data: [DONE]`; with `stream: false`, one `chat.completion` body (`completion_body`).

    data: {"id": "chatcmpl-…", "object": "chat.completion.chunk", "created": 1700000000,
           "model": …, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
           "logprobs": null, "finish_reason": null}]}
    data: {… "choices": [{"index": 0, "delta": {"content": "Hello"}, …}]}
    data: {… "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]}
    data: {… "choices": [], "usage": {prompt_tokens, completion_tokens, total_tokens}}
    data: [DONE]

The last chunk only with `stream_options.include_usage`, which also puts `"usage": null` on
every other chunk, as OpenAI does. The id is `chatcmpl-<run_id>` and `created` the run's start,
so a client holding a chunk can name the run to `/v1/runs/{id}/cancel`. Events OpenAI has no
place for (status, sources, SQL, table, CSV, follow-ups) are dropped.

An error after the stream started is OpenAI's in-stream error object, `data: {"error":
{"message", "type", "param", "code"}}`, which openai-python raises as `APIError`; a cancelled
run ends the same way, with code `cancelled`. No `retry:` preamble and never an `id:`:
openai-python's decoder dispatches a message for a block holding only `retry:` (or any blank
line once an id was seen) and fails to parse its empty data as JSON.

A renderer that never saw `start` (a resume through `/v1/runs/{id}/events?format=openai`)
names its chunks `chatcmpl-resumed` with `created` 0: OpenAI's format has no resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ssechat.dialects import DONE, TEXT_MARK, TextTemplate, Wire, frame, register_dialect
from ssechat.events import Complete, Delta, Error, Event, Metadata, Start, Usage

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


class OpenAIRenderer:
    __slots__ = ("_content", "_created", "_id", "_include_usage", "_model", "_usage")
    wire = Wire(retry=False)

    def __init__(self, *, include_usage: bool = False) -> None:
        self._include_usage = include_usage
        self._id = "chatcmpl-resumed"
        self._created = 0
        self._model = ""
        self._usage: Usage | None = None
        self._content: TextTemplate | None = None  # a content chunk, made when first needed

    def render(self, seq: int, event: Event) -> bytes:
        if isinstance(event, Start):
            self._id = completion_id(event)
            self._created = int(event.created_at.timestamp())
            self._model = event.model
            self._content = None
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, Delta):
            return self.render_text(seq, event.text)
        if isinstance(event, Metadata):
            self._model = self._model or event.model
            self._content = None
            self._usage = event.usage
            return b""
        if isinstance(event, Complete):
            end = self._chunk({}, finish_reason=finish_reason(event.finish_reason))
            if self._include_usage:
                usage = event.usage or self._usage
                end += frame({**self._head(), "choices": [], "usage": usage_object(usage)})
            return end + DONE
        if isinstance(event, Error):
            return frame({"error": error_object(event.message, code=event.code)}) + DONE
        return b""

    def render_text(self, seq: int, text: str) -> bytes:
        if not text:
            return b""
        content = self._content
        if content is None:  # a chunk's head changes only with the run's start and metadata
            content = self._content = TextTemplate(self._chunk({"content": TEXT_MARK}))
        return content.fill(text)

    def _head(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self._head(), "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return frame(chunk)


def completion_id(start: Start) -> str:
    return f"chatcmpl-{start.run_id}"


def finish_reason(reason: str | None) -> str:
    """OpenAI's finish reason for a backend's; `stop` for none or one OpenAI does not have."""
    return reason if reason in FINISH_REASONS else "stop"


def usage_object(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def error_object(
    message: str, *, code: str | None, type: str = "server_error", param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object (`{"error": <this>}` on the wire)."""
    return {"message": message, "type": type, "param": param, "code": code}


def completion_body(events: Sequence[Event]) -> dict[str, Any]:
    """The `chat.completion` body for a run that ended with `complete`: `stream: false`."""
    start = next(e for e in events if isinstance(e, Start))
    complete = next(e for e in events if isinstance(e, Complete))
    metadata = next((e for e in events if isinstance(e, Metadata)), None)
    usage = complete.usage or (metadata.usage if metadata else None)
    return {
        "id": completion_id(start),
        "object": "chat.completion",
        "created": int(start.created_at.timestamp()),
        "model": start.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": complete.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(complete.finish_reason),
            }
        ],
        "usage": usage_object(usage),
    }


register_dialect("openai")(OpenAIRenderer)
