"""Pipelines: async generators from a `Context` to canonical events, never touching HTTP.

A pipeline yields canonical events (`Status`, `Sources`, `Delta`, …) or plain `str` for answer
text; the run around it adds `start`, `metadata` and the final `complete` or `error`. The
built-ins register through `register_pipeline`, the same registry a user's pipeline joins.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssechat.events import Event
from ssechat.models import GenerationParams, Message, ModelBackend

if TYPE_CHECKING:
    from ssechat.services import Services


@dataclass(frozen=True, slots=True)
class Context:
    """What a pipeline gets to answer one question."""

    question: str
    model: ModelBackend
    params: GenerationParams
    history: Sequence[Message] = ()
    user: str = "local"
    conversation_id: str = ""
    run_id: str = ""
    # The pipeline's default instructions (`Settings.system_prompts[name]`).
    system_prompt: str = ""
    # The app's resources (settings, store, per-app `resources`); None outside an app.
    services: Services | None = None


Pipeline = Callable[[Context], AsyncGenerator[Event | str, None]]
_PIPELINES: dict[str, Pipeline] = {}


def register_pipeline(name: str) -> Callable[[Pipeline], Pipeline]:
    """Decorator: make `fn` available as `pipeline: name` in chat requests."""

    def decorate(fn: Pipeline) -> Pipeline:
        _PIPELINES[name] = fn
        return fn

    return decorate


def get_pipeline(name: str) -> Pipeline:
    """The pipeline registered as `name`; `KeyError` if there is none."""
    _load_builtins()
    return _PIPELINES[name]


def pipeline_names() -> list[str]:
    _load_builtins()
    return sorted(_PIPELINES)


def _load_builtins() -> None:
    from ssechat.pipelines import chat  # noqa: F401  (registers itself)
