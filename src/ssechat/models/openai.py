"""Any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio) through
the official `openai` SDK.

Stopping: closing our stream closes the SDK's HTTP response, and a server that notices the
closed connection stops generating; there is no other stop signal in that API.

Tools: `params.tools` go out as `tools` (with the server's default `tool_choice`, "auto"), and
the calls come back joined on the delta that carries the finish reason.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import openai

from ssechat.errors import ModelError
from ssechat.events import Usage
from ssechat.models import GenerationParams, Message, ModelDelta, ToolCall, register_backend

if TYPE_CHECKING:
    from ssechat.config import Settings


class OpenAIBackend:
    backend: ClassVar[str] = "openai"
    params_type: ClassVar[type[GenerationParams]] = GenerationParams

    def __init__(self, client: openai.AsyncOpenAI, model: str, *, max_tokens: int) -> None:
        self._client = client
        self._model = model
        self._max_tokens = max_tokens

    @property
    def model(self) -> str:
        return self._model

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        request: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens or self._max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for name in ("temperature", "top_p", "seed"):
            if (value := getattr(params, name)) is not None:
                request[name] = value
        if params.stop:
            request["stop"] = list(params.stop)
        if params.tools:
            request["tools"] = [
                {"type": "function", "function": tool.model_dump()} for tool in params.tools
            ]
        # Tool-call arguments arrive in fragments keyed by index; they are joined and
        # reported once, with the finish reason.
        calls: dict[int, list[str]] = {}
        held = ""  # a high surrogate whose low half opens the next chunk's text (`_whole`)
        try:
            stream = await self._client.chat.completions.create(**request)
            async with stream:
                async for chunk in stream:
                    usage = (
                        Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                        if chunk.usage
                        else None
                    )
                    if not chunk.choices:
                        if usage:
                            yield ModelDelta(usage=usage)
                        continue
                    choice = chunk.choices[0]
                    for call in choice.delta.tool_calls or ():
                        parts = calls.setdefault(call.index, ["", "", ""])
                        fn = call.function
                        parts[0] = call.id or parts[0]
                        parts[1] = (fn.name if fn and fn.name else "") or parts[1]
                        parts[2] += fn.arguments if fn and fn.arguments else ""
                    tool_calls = (
                        tuple(ToolCall(*calls[i]) for i in sorted(calls))
                        if choice.finish_reason
                        else ()
                    )
                    text, held = _whole(
                        held + (choice.delta.content or ""), hold=not choice.finish_reason
                    )
                    if text or tool_calls or choice.finish_reason or usage:
                        yield ModelDelta(text, tool_calls, usage, choice.finish_reason)
            if held:  # its low half never came
                yield ModelDelta(_whole(held, hold=False)[0])
        except openai.APIError as exc:
            raise ModelError(f"model server error: {exc.message}") from exc

    async def aclose(self) -> None:
        await self._client.close()


def _whole(text: str, *, hold: bool) -> tuple[str, str]:
    """A chunk's text as it can be sent and stored, and what it holds back for the next.

    A server that escapes JSON as ASCII writes a character beyond the BMP (an emoji) as a
    surrogate pair, `\\ud83d\\ude00`, and one that splits its chunks by UTF-16 units can split
    the pair: the SDK then parses a lone half from each chunk, which no UTF-8 encoder takes
    (the run's log, the wire and the store would all refuse the token). A high half that ends
    a chunk waits for the next one's low half (`hold`: the stream goes on); a half that finds
    no partner becomes U+FFFD, as a UTF-8 decoder makes of a broken sequence."""
    held = ""
    if hold and text and "\ud800" <= text[-1] <= "\udbff":
        text, held = text[:-1], text[-1]
    try:
        text.encode()
    except UnicodeEncodeError:  # UTF-16 joins the pairs that are whole; the rest are U+FFFD
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text, held


@register_backend("openai")
def _from_settings(settings: Settings) -> OpenAIBackend:
    client = openai.AsyncOpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        timeout=settings.openai_timeout,
        max_retries=1,
    )
    return OpenAIBackend(
        client, settings.model or settings.openai_model, max_tokens=settings.max_tokens
    )
