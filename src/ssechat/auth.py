"""Who is asking: bearer API keys, a trusted header behind an auth proxy, or the local user.

With no API keys configured ssechat serves a single local user — and then refuses to listen
beyond loopback unless told `--insecure-no-auth`, so a forgotten setting never exposes it.
While no keys exist a bearer token is ignored rather than refused: clients written for the
seeds send their own tokens (seed 004), and they must work against a local server unchanged.
Once a key exists, keys are required for the rest of the process's life, even if every key is
revoked (a restart with no keys returns to the loopback-only local mode). A key created while
the server runs (by `ssechat keys create`, another process) is required within
`KEYS_RECHECK_S`: asking the database on every request of a keyless server cost a query per
request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from functools import partial
from typing import Annotated

from fastapi import Depends, Request

from ssechat.api import services
from ssechat.errors import ApiError
from ssechat.services import Services

LOCAL_USER = "local"
KEYS_RECHECK_S = 1.0


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
        if not await _has_keys(svc):
            svc.no_keys_until = now + KEYS_RECHECK_S
            return LOCAL_USER
        svc.keys_required = True
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    owner = await svc.store.user_for_key(key.strip())
    if owner is None:
        raise Unauthorized("invalid API key")
    return owner


async def _has_keys(svc: Services) -> bool:
    """Whether the store has API keys: one query for every request that asks while it
    runs (a burst of a thousand requests at start-up made a thousand, each a hop to the
    database's thread). Shielded: one caller that leaves must not fail the others."""
    if svc.keys_check is None:
        svc.keys_check = asyncio.ensure_future(svc.store.has_keys())
        svc.keys_check.add_done_callback(partial(_checked, svc))
    return await asyncio.shield(svc.keys_check)


def _checked(svc: Services, check: asyncio.Future[bool]) -> None:
    svc.keys_check = None  # the next recheck asks the store again
    if not check.cancelled():
        check.exception()  # retrieved: every waiter may have left before it failed


User = Annotated[str, Depends(current_user)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
