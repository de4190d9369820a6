"""Who is asking: requests that arrive together share the store's one answer, whether keys
exist or whose a key is (tests/integration/test_auth.py covers keys and proxies end to end)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.requests import Request

from ssechat.auth import LOCAL_USER, current_user
from ssechat.config import Settings
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.models.scripted import ScriptedBackend
from ssechat.runs import RunManager
from ssechat.services import Services
from ssechat.store import KEY_PREFIX, Store, sqlite_url

REQUEST = Request({"type": "http", "headers": []})


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    store = await Store.open(sqlite_url(tmp_path))
    settings = Settings(model_backend="scripted", data_dir=tmp_path)
    yield Services(settings, ScriptedBackend("x"), RunManager(MemoryEventLog()), store)
    await store.close()


def count_queries(svc: Services, name: str = "has_keys") -> list[int]:
    """Count the store's `name` queries (each still runs, on the real database)."""
    calls = [0]
    query = getattr(svc.store, name)

    async def counted(*args: str) -> object:
        calls[0] += 1
        return await query(*args)

    setattr(svc.store, name, counted)
    return calls


def bearer(key: str) -> Request:
    return Request({"type": "http", "headers": [(b"authorization", f"Bearer {key}".encode())]})


async def test_a_burst_of_requests_asks_the_store_once_whether_keys_exist(
    svc: Services,
) -> None:
    calls = count_queries(svc)
    users = await asyncio.gather(*(current_user(REQUEST, svc) for _ in range(200)))
    assert users == [LOCAL_USER] * 200
    assert calls[0] == 1
    # Within the recheck interval the answer is trusted; after it, the store is asked again.
    await current_user(REQUEST, svc)
    assert calls[0] == 1
    svc.no_keys_until = 0.0
    await current_user(REQUEST, svc)
    assert calls[0] == 2


async def test_a_request_that_leaves_does_not_fail_the_others_waiting_on_the_same_query(
    svc: Services,
) -> None:
    calls = count_queries(svc)
    leaving = asyncio.create_task(current_user(REQUEST, svc))
    staying = asyncio.create_task(current_user(REQUEST, svc))
    await asyncio.sleep(0)  # both wait on the one query now
    leaving.cancel()
    assert await staying == LOCAL_USER
    assert leaving.cancelled()
    assert calls[0] == 1


async def test_a_key_created_meanwhile_is_required_from_the_next_check_on(svc: Services) -> None:
    assert await current_user(REQUEST, svc) == LOCAL_USER
    await svc.store.create_key("alice")
    svc.no_keys_until = 0.0  # the recheck interval has passed
    with pytest.raises(Exception, match="missing API key"):
        await current_user(REQUEST, svc)
    assert svc.keys_required


async def test_a_burst_with_one_key_asks_the_store_once_whose_it_is(svc: Services) -> None:
    key = await svc.store.create_key("alice")
    svc.keys_required = True
    calls = count_queries(svc, "user_for_key")
    users = await asyncio.gather(*(current_user(bearer(key), svc) for _ in range(200)))
    assert users == ["alice"] * 200
    assert calls[0] == 1
    # Not kept: the next request asks again, so a key revoked meanwhile is refused.
    assert await svc.store.revoke_key(key[: len(KEY_PREFIX) + 6]) == 1
    with pytest.raises(Exception, match="invalid API key"):
        await current_user(bearer(key), svc)
    assert calls[0] == 2
    wrong = await asyncio.gather(
        *(current_user(bearer("sk-wrong"), svc) for _ in range(50)), return_exceptions=True
    )
    assert all("invalid API key" in str(e) for e in wrong)
    assert calls[0] == 3
