"""The resources an app builds from `Settings` in its lifespan, shared by routes and pipelines.

Pipelines reach them through `Context.services`: the store for retrieval, `resources` for what
a pipeline creates once per app and reuses (a SQL data source, an embedding model). Anything in
`resources` with an `aclose()` is closed when the app stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssechat.config import Settings
    from ssechat.models import ModelBackend
    from ssechat.runs import RunManager
    from ssechat.store import Store


@dataclass(slots=True)
class Services:
    settings: Settings
    model: ModelBackend
    runs: RunManager
    store: Store
    resources: dict[str, Any] = field(default_factory=dict)
    # Set once any API key has been seen, and never unset while the process lives: revoking
    # the last key must lock a running server, not open it to unauthenticated callers.
    keys_required: bool = False
    # Until then: when the store last said it had none may be trusted (`auth.KEYS_RECHECK_S`).
    no_keys_until: float = 0.0
    # Questions to the store being asked, each answer awaited by every request that asks
    # it meanwhile (`auth._asked_once`): whether keys exist, whose a key is.
    asking: dict[Hashable, asyncio.Future[Any]] = field(default_factory=dict)

    async def aclose_resources(self) -> None:
        for resource in self.resources.values():
            if hasattr(resource, "aclose"):
                await resource.aclose()
        self.resources.clear()
