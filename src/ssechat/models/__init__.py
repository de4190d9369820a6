"""Model backends: one small Protocol, and a registry the built-ins join like any plugin.

A backend turns chat messages into an async stream of `ModelDelta`s (text pieces, tool calls,
usage, finish reason). Closing that stream — `aclose()`, which callers make certain with
`contextlib.aclosing`, or a cancellation arriving inside it — must stop generation: that is
how the stop button reaches the model.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ssechat.events import Usage

if TYPE_CHECKING:
    from ssechat.config import Settings

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


class ModelDelta(NamedTuple):
    """One step of a model's stream; any field may be empty.

    A NamedTuple, not a frozen dataclass: one is made per token, and a frozen dataclass's
    `__init__` sets each field through `object.__setattr__` (twice the time per token)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None


class Tool(BaseModel):
    """A function the model may call: OpenAI's `tools[].function` (JSON Schema `parameters`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class GenerationParams(BaseModel):
    """Per-request sampling parameters (`params` in a chat request); unknown keys are refused.

    `tools` are offered to backends that support tool calls (`openai`); the others ignore
    them, so a pipeline that offers tools must also understand a plain-text answer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()


class ModelBackend(Protocol):
    """What a model backend implements (usually class attributes and one async generator).

    `params_type` is the model of a request's `params`: `GenerationParams` or an extension.
    """

    @property
    def backend(self) -> str:
        """The registered backend name, e.g. `llamacpp`."""
        ...

    @property
    def params_type(self) -> type[GenerationParams]: ...

    @property
    def model(self) -> str:
        """The model name clients see (`start.model`, `GET /v1/models`)."""
        ...

    def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        """The answer as it is generated. Its text must encode as UTF-8 (no lone surrogate:
        the log, the wire and the store all refuse one; `openai._whole`)."""
        ...

    async def aclose(self) -> None:
        """Release the backend's resources (called from the app's lifespan)."""
        ...


BackendFactory = Callable[["Settings"], ModelBackend]
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory under `name` (the value of `SSECHAT_MODEL_BACKEND`)."""

    def decorate(factory: BackendFactory) -> BackendFactory:
        _BACKENDS[name] = factory
        return factory

    return decorate


def create_backend(settings: Settings) -> ModelBackend:
    """Build the backend that `settings.model_backend` names."""
    _load_builtins()
    try:
        factory = _BACKENDS[settings.model_backend]
    except KeyError:
        known = ", ".join(sorted(_BACKENDS))
        raise ValueError(
            f"unknown model backend {settings.model_backend!r} (known: {known})"
        ) from None
    return factory(settings)


def backend_names() -> list[str]:
    _load_builtins()
    return sorted(_BACKENDS)


def _load_builtins() -> None:
    # Imported here, not at module top, so that importing the Protocol stays cheap and the
    # built-ins register through the same decorator a plugin would use.
    from ssechat.models import llamacpp, openai, scripted  # noqa: F401
