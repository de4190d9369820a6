"""Dialects: pure translations of canonical events into a client's wire format.

A dialect is a factory for a `Renderer`, made once per response (some formats number their
own messages or remember what they have opened); `render` turns one logged event into the
bytes to send, possibly none. Dialects never see the model, the run or the socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ssechat.events import Event


class Renderer(Protocol):
    def render(self, seq: int, event: Event) -> bytes: ...


Dialect = Callable[[], Renderer]
_DIALECTS: dict[str, Dialect] = {}


def register_dialect(name: str) -> Callable[[Dialect], Dialect]:
    def decorate(dialect: Dialect) -> Dialect:
        _DIALECTS[name] = dialect
        return dialect

    return decorate


def get_dialect(name: str) -> Dialect:
    """The dialect registered as `name`; `KeyError` if there is none."""
    _load_builtins()
    return _DIALECTS[name]


def dialect_names() -> list[str]:
    _load_builtins()
    return sorted(_DIALECTS)


def _load_builtins() -> None:
    from ssechat.dialects import ssechat  # noqa: F401  (registers itself)
