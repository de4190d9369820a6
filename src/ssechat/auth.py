"""Who is asking: bearer API keys, a trusted header behind an auth proxy, or the local user.

With no API keys configured ssechat serves a single local user — and then refuses to listen
beyond loopback unless told `--insecure-no-auth`, so a forgotten setting never exposes it.
While no keys exist a bearer token is ignored rather than refused: clients written for the
seeds send their own tokens (seed 004), and they must work against a local server unchanged.
Once a key exists, keys are required for the rest of the process's life, even if every key is
revoked (a restart with no keys returns to the loopback-only local mode). A key created while
the server runs (by `ssechat keys create`, another process) is required within
`KEYS_RECHECK_S`: asking the database on every request of a keyless server cost a query per
request. Requests that arrive together share each question to the database (`_asked_once`):
whether keys exist, and whose a key is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from ssechat.api import services
from ssechat.errors import ApiError
from ssechat.services import Services

LOCAL_USER = "local"
KEYS_RECHECK_S = 1.0
HAS_KEYS = ("has_keys",)  # the question whether any key exists; a key itself is a str
T = TypeVar("T")


class Unauthorized(ApiError):
    code = "unauthorized"
    status = 401


async def current_user(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    """FastAPI dependency: the caller's user id."""
    header = svc.settings.trusted_user_header
    if header:
        user = request.headers.get(header, "").strip()
        if not user:
            raise Unauthorized(f"missing {header} header")
        return user
    if not svc.keys_required:
        now = time.monotonic()
        if now < svc.no_keys_until:
            return LOCAL_USER
        if not await _asked_once(svc, HAS_KEYS, svc.store.has_keys):
            svc.no_keys_until = now + KEYS_RECHECK_S
            return LOCAL_USER
        svc.keys_required = True
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    key = key.strip()
    owner = await _asked_once(svc, key, partial(svc.store.user_for_key, key))
    if owner is None:
        raise Unauthorized("invalid API key")
    return owner


async def _asked_once(svc: Services, question: Hashable, ask: Callable[[], Awaitable[T]]) -> T:
    """`ask()`'s answer, asked once for every request that wants it while it is asked: a
    burst of a thousand requests made a thousand queries, each a hop to the database's
    thread, before any could start. Answers are not kept: the next request asks anew (a key
    revoked meanwhile is refused). Shielded: one caller that leaves must not fail the others."""
    pending = svc.asking.get(question)
    if pending is None:
        pending = svc.asking[question] = asyncio.ensure_future(ask())
        pending.add_done_callback(partial(_answered, svc.asking, question))
    answer: T = await asyncio.shield(pending)
    return answer


def _answered(
    asking: dict[Hashable, asyncio.Future[Any]], question: Hashable, answer: asyncio.Future[Any]
) -> None:
    del asking[question]
    if not answer.cancelled():
        answer.exception()  # retrieved: every caller may have left before it failed


User = Annotated[str, Depends(current_user)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
