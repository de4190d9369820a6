"""Pipelines: async generators from a `Context` to canonical events, never touching HTTP.

A pipeline yields canonical events (`Status`, `Sources`, `Delta`, …) or plain `str` for answer
text; the run around it adds `start`, `metadata` and the final `complete` or `error`. The
built-ins register through `register_pipeline`, the same registry a user's pipeline joins.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, overload

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
PipelineT = TypeVar("PipelineT", bound=Pipeline)
_PIPELINES: dict[str, Pipeline] = {}


@overload
def register_pipeline(name: str) -> Callable[[PipelineT], PipelineT]: ...
@overload
def register_pipeline(name: str, fn: PipelineT) -> PipelineT: ...
def register_pipeline(
    name: str, fn: PipelineT | None = None
) -> PipelineT | Callable[[PipelineT], PipelineT]:
    """Make a pipeline available as `"pipeline": name` in chat requests (and to every route
    and dialect). As a decorator, `@register_pipeline("shout")`, or a call,
    `register_pipeline("shout", shout)`. A later registration of the same name replaces it."""

    def decorate(pipeline: PipelineT) -> PipelineT:
        _PIPELINES[name] = pipeline
        return pipeline

    return decorate if fn is None else decorate(fn)


def get_pipeline(name: str) -> Pipeline:
    """The pipeline registered as `name`; `KeyError` if there is none."""
    _load_builtins()
    return _PIPELINES[name]


def pipeline_names() -> list[str]:
    _load_builtins()
    return sorted(_PIPELINES)


def _load_builtins() -> None:
    from ssechat.pipelines import (
        chat,  # noqa: F401  (registers itself)
        rag,  # noqa: F401  (registers itself)
        sql,  # noqa: F401  (registers itself)
    )
