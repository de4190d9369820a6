"""Event logs on Redis Streams, shared by every replica: a run started on one is followed,
resumed and cancelled through any other.

One stream per run. An event's seq is its entry id (`<seq>-0`), so `Last-Event-ID: 41` is
`XREAD … STREAMS key 41-0` as it stands, and the log ends with an `end` entry after its last
event, so a reader learns that it has ended from the same read that brings the last events.
Appending is a small Lua script: it numbers the event, refuses to write after the end and
renews the owner's mark in the same step.

Readers in one process share one copy of each log they follow (a `MemoryEventLog`), kept up
by one blocking `XREAD` per run: a thousand subscribers to a run cost one Redis connection,
not a thousand.

Marks beside each stream, all expiring by themselves: `owner` (the replica generating the
run: renewed by every append and every heartbeat), `watch` (some replica has subscribers),
`cancel` (somebody asked to stop the run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from ssechat import events as codec
from ssechat.eventlog import Batch, EventLogUnavailable, Listener, LogEnded, RunNotFound
from ssechat.eventlog.memory import MAX_BATCH, MemoryEventLog
from ssechat.events import Event
from ssechat.ids import new_id

logger = logging.getLogger("ssechat.eventlog.redis")

# How long one XREAD blocks: the pace at which a copy nobody reads any more is noticed.
BLOCK_S = 2.0
# How long a command may take before Redis counts as unavailable (XREAD: on top of BLOCK_S).
COMMAND_TIMEOUT_S = 3.0
# What "Redis does not answer" looks like: refused, dropped, or silent past the timeout.
UNREACHABLE = (ConnectionError, RedisTimeout, TimeoutError, OSError)
IDLE_S = 60.0  # a copy nobody has read for this long is dropped (read again from Redis)
COPY_RETENTION_S = 30.0  # an ended run's local copy; after that, reads go back to Redis

# KEYS: stream, owner mark. ARGV: type, data, replica, owner ttl (ms), stream ttl (ms).
_APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then
  if last[1][2][1] == 'end' then return redis.error_reply('ENDED the run has ended') end
  seq = tonumber(string.match(last[1][1], '^(%d+)'))
end
seq = seq + 1
redis.call('XADD', KEYS[1], seq .. '-0', 't', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return seq
"""

# Ends a log: optionally one last event, then the `end` entry; drops the owner mark.
# KEYS: stream, owner mark. ARGV: type ('' for none), data, retention (ms), '1' to end it only
# when its owner is gone. Returns 1 if this call ended it.
_END = """
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 or last[1][2][1] == 'end' then return 0 end
local seq = tonumber(string.match(last[1][1], '^(%d+)'))
if ARGV[1] ~= '' then
  seq = seq + 1
  redis.call('XADD', KEYS[1], seq .. '-0', 't', ARGV[1], 'd', ARGV[2])
end
redis.call('XADD', KEYS[1], (seq + 1) .. '-0', 'end', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: stream, cancel mark. ARGV: mark ttl (ms). Returns 1 if the run is open.
_CANCEL = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 or last[1][2][1] == 'end' then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1
"""


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    """Redis not answering is `EventLogUnavailable` (503 / a retryable error event).

    The time limit is ours, not the client's `socket_timeout`: redis-py enforces that with
    `asyncio.wait_for`, which on Python 3.11 can swallow a cancel that lands meanwhile, and a
    run's cancel must never be lost."""
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            yield
    except UNREACHABLE as exc:
        raise EventLogUnavailable(f"the event log (Redis) is unavailable: {exc!r}") from exc


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class RedisEventLog:
    def __init__(
        self,
        url: str,
        *,
        retention: float = 300.0,
        owner_ttl: float = 5.0,
        prefix: str = "ssechat:",
    ) -> None:
        # One retry without delay: enough to replace a pooled connection that a Redis
        # restart closed, and a Redis that is down still fails fast (a 503, not a hang).
        self._redis = aioredis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=None, retry=Retry(NoBackoff(), 1)
        )
        self._retention = retention
        self._owner_ttl = owner_ttl
        self._prefix = prefix
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{new_id('r')}"
        self._append = self._redis.register_script(_APPEND)
        self._end = self._redis.register_script(_END)
        self._cancel = self._redis.register_script(_CANCEL)
        self._copies = MemoryEventLog(retention=min(retention, COPY_RETENTION_S))
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._last_read: dict[str, float] = {}

    def _key(self, run_id: str, mark: str = "events") -> str:
        # The hash tag keeps a run's keys in one slot, as a Redis Cluster's scripts need.
        return f"{self._prefix}{{{run_id}}}:{mark}"

    # -- EventLog ---------------------------------------------------------------------------

    async def append(self, run_id: str, event: Event) -> int:
        keys = [self._key(run_id), self._key(run_id, "owner")]
        args: list[bytes | str | int] = [
            event.type,
            codec.dumps(event),
            self.replica,
            _ms(self._owner_ttl),
            _ms(self._retention + self._owner_ttl),
        ]
        async with _reachable():
            try:
                return int(await self._append(keys, args))
            except ResponseError as exc:
                if "ENDED" in str(exc):
                    raise LogEnded(
                        f"run {run_id} has ended; its log takes no more events"
                    ) from None
                raise

    async def read(self, run_id: str, after: int, timeout: float) -> Batch:
        if run_id not in self._copies:
            await self._load(run_id)
        if run_id in self._followers:
            self._last_read[run_id] = asyncio.get_running_loop().time()
        return await self._copies.read(run_id, after, timeout)

    async def close(self, run_id: str) -> None:
        await self._finish(run_id, None, only_if_orphaned=False)

    def listen(self, run_id: str, after: int, listener: Listener) -> Callable[[], None] | None:
        # Readers read: each read is what tells the copy's follower that someone still
        # follows the run (IDLE_S), and what reports Redis down to them.
        return None

    async def aclose(self) -> None:
        for task in self._followers.values():
            task.cancel()
        await asyncio.gather(*self._followers.values(), return_exceptions=True)
        await self._copies.aclose()
        await self._redis.aclose()

    # -- SharedEventLog ---------------------------------------------------------------------

    async def heartbeat(self, owned: Collection[str], followed: Collection[str]) -> set[str]:
        if not owned and not followed:
            return set()
        owned = list(owned)
        ttl = _ms(self._owner_ttl)
        # Marks of replicas are members of one sorted set per run, scored by when they lapse:
        # every replica's mark stays visible to the others.
        lapse = int(time.time() * 1000) + ttl
        async with _reachable(), self._redis.pipeline(transaction=False) as pipe:
            for run_id in owned:
                pipe.set(self._key(run_id, "owner"), self.replica, px=ttl)
                # A run quiet for longer than its retention must not expire while it runs.
                pipe.pexpire(self._key(run_id), _ms(self._retention + self._owner_ttl))
            for run_id in followed:
                pipe.zadd(self._key(run_id, "watch"), {self.replica: lapse})
                pipe.pexpire(self._key(run_id, "watch"), ttl)
            for run_id in owned:
                pipe.exists(self._key(run_id, "cancel"))
            replies = await pipe.execute()
        asked = replies[len(replies) - len(owned) :]
        return {run_id for run_id, cancel in zip(owned, asked, strict=True) if cancel}

    async def request_cancel(self, run_id: str) -> bool:
        keys = [self._key(run_id), self._key(run_id, "cancel")]
        async with _reachable():
            return bool(await self._cancel(keys, [_ms(self._retention)]))

    async def followed_elsewhere(self, run_id: str) -> bool:
        async with _reachable():
            live = await self._redis.zrangebyscore(
                self._key(run_id, "watch"), int(time.time() * 1000), "+inf"
            )
        return any(replica != self.replica.encode() for replica in live)

    async def orphans(self, run_ids: Collection[str]) -> Mapping[str, bool]:
        run_ids = list(run_ids)
        if not run_ids:
            return {}
        async with _reachable(), self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.exists(self._key(run_id, "owner"))
                pipe.xrevrange(self._key(run_id), count=1)
            replies = await pipe.execute()
        found: dict[str, bool] = {}
        for run_id, owned, last in zip(run_ids, replies[::2], replies[1::2], strict=True):
            if not owned and not (last and b"end" in last[0][1]):
                found[run_id] = bool(last)
        return found

    async def abandon(self, run_id: str, event: Event) -> bool:
        return await self._finish(run_id, event, only_if_orphaned=True)

    async def ping(self) -> None:
        async with _reachable():
            await self._redis.ping()

    # -- internals --------------------------------------------------------------------------

    async def _finish(self, run_id: str, event: Event | None, *, only_if_orphaned: bool) -> bool:
        keys = [self._key(run_id), self._key(run_id, "owner")]
        args: list[bytes | str | int] = [
            event.type if event is not None else "",
            codec.dumps(event) if event is not None else b"",
            _ms(self._retention),
            "1" if only_if_orphaned else "0",
        ]
        async with _reachable():
            return bool(await self._end(keys, args))

    async def _load(self, run_id: str) -> None:
        """Make the local copy of a run's log: what Redis has now, then a follower task that
        keeps it up. Concurrent first readers share one load."""
        loading = self._loading.get(run_id)
        if loading is not None:
            await asyncio.shield(loading)
            return
        self._loading[run_id] = loading = asyncio.get_running_loop().create_future()
        try:
            async with _reachable():
                entries = await self._redis.xrange(self._key(run_id))
            if not entries:
                raise RunNotFound(f"run {run_id} not found")
            last = await self._copy(run_id, entries)
            if last is not None:
                self._last_read[run_id] = asyncio.get_running_loop().time()
                self._followers[run_id] = asyncio.create_task(self._follow(run_id, last))
            loading.set_result(None)
        except BaseException as exc:
            loading.set_exception(exc)
            loading.exception()  # retrieved: concurrent readers get it from the await
            raise
        finally:
            del self._loading[run_id]

    async def _copy(self, run_id: str, entries: list[Any]) -> bytes | None:
        """Add `entries` to the local copy; the id to read on from, or None once it ended."""
        for entry_id, fields in entries:
            if b"end" in fields:
                await self._copies.close(run_id)
                return None
            # As it is: an event's payload in Redis is its canonical `data:`, all the copy keeps.
            seq = self._copies.add_message(run_id, fields[b"t"].decode(), fields[b"d"])
            assert seq == _seq(entry_id), "a stream's ids are its seqs, without gaps"
        return entries[-1][0] if entries else None

    async def _follow(self, run_id: str, last: bytes) -> None:
        loop = asyncio.get_running_loop()
        key = self._key(run_id)
        try:
            while True:
                async with asyncio.timeout(BLOCK_S + COMMAND_TIMEOUT_S):
                    reply: Any = await self._redis.xread(
                        {key: last}, count=MAX_BATCH, block=_ms(BLOCK_S)
                    )
                if reply:
                    following = await self._copy(run_id, reply[0][1])
                    if following is None:
                        return
                    last = following
                elif loop.time() - self._last_read.get(run_id, 0.0) > IDLE_S:
                    self._copies.discard(run_id)
                    return
        except UNREACHABLE as exc:
            # The readers are woken and read again, which asks Redis and reports it down.
            logger.warning("run %s: lost the event log: %s", run_id, exc)
            self._copies.discard(run_id)
        finally:
            self._followers.pop(run_id, None)
            self._last_read.pop(run_id, None)
