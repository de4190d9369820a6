"""Event logs (ssechat.eventlog): the same behaviour on both backends, in memory
(`MemoryEventLog`) and on a real Redis (`RedisEventLog`); then what only a log shared by
several replicas does (`SharedEventLog`), with two `RedisEventLog`s on one server standing for
two replicas."""

from __future__ import annotations

import asyncio

import pytest

from ssechat.dialects.ssechat import CanonicalRenderer
from ssechat.errors import NotFound
from ssechat.eventlog import (
    Batch,
    Entry,
    EventLog,
    EventLogUnavailable,
    LogEnded,
    RunNotFound,
    SharedEventLog,
)
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.eventlog.redis import RedisEventLog
from ssechat.events import Complete, Delta, Error, Event, Status, dumps
from tests.redis import redis_server
from tests.unit.conftest import NewLog

RUN = "run_test"
# A waiting read that is woken must return well before this; it is a hang guard, not a budget.
PROMPT = 1.0


def deltas(n: int) -> list[Delta]:
    return [Delta(f"piece {i}") for i in range(1, n + 1)]


async def filled(
    new_log: NewLog, n: int, *, retention: float = 300.0, run_id: str = RUN
) -> EventLog:
    log = new_log(retention=retention)
    for event in deltas(n):
        await log.append(run_id, event)
    return log


async def test_append_returns_seqs_counting_from_one_without_gaps(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = new_log()
        assert [await log.append(RUN, e) for e in deltas(5)] == [1, 2, 3, 4, 5]


async def test_each_run_has_its_own_seqs(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = new_log()
        assert await log.append("run_a", Delta("a1")) == 1
        assert await log.append("run_b", Delta("b1")) == 1
        assert await log.append("run_a", Delta("a2")) == 2
        assert (await log.read("run_b", 0, 0)).entries == [(1, Delta("b1"))]


@pytest.mark.parametrize("after", [0, 1, 3, 4])
async def test_read_returns_exactly_the_entries_after_the_offset_with_their_seqs(
    new_log: NewLog,
    after: int,
) -> None:
    async with asyncio.timeout(5):
        events = deltas(5)
        log = await filled(new_log, 5)
        batch = await log.read(RUN, after, 0)
        assert list(batch.entries) == [(seq, events[seq - 1]) for seq in range(after + 1, 6)]
        assert batch.closed is False


async def test_read_of_an_unknown_run_raises_run_not_found_a_404(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 1)
        with pytest.raises(RunNotFound) as caught:
            await log.read("run_nobody", 0, 0)
        assert isinstance(caught.value, NotFound)
        assert caught.value.status == 404
        assert caught.value.code == "run_not_found"


async def test_read_of_an_unknown_run_fails_at_once_even_with_a_timeout(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = new_log()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RunNotFound):
            await log.read("run_nobody", 0, 3.0)
        assert loop.time() - started < PROMPT


async def test_a_read_with_nothing_new_waits_for_the_timeout_then_returns_an_open_empty_batch(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        batch = await log.read(RUN, 2, 0.1)
        assert loop.time() - started >= 0.09
        assert batch == Batch(3, [], closed=False)


async def test_a_waiting_read_is_woken_by_an_append_long_before_its_timeout(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 1)
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(log.read(RUN, 1, 5.0))
        await asyncio.sleep(0.02)
        assert not reader.done()  # it is really waiting
        started = loop.time()
        await log.append(RUN, Delta("new"))
        batch = await reader
        assert loop.time() - started < PROMPT
        assert list(batch.entries) == [(2, Delta("new"))]
        assert batch.closed is False


async def test_one_append_wakes_every_waiting_reader(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 3)
        loop = asyncio.get_running_loop()
        readers = [asyncio.create_task(log.read(RUN, 3, 5.0)) for _ in range(50)]
        await asyncio.sleep(0.02)
        assert not any(r.done() for r in readers)
        started = loop.time()
        await log.append(RUN, Status("generating"))
        batches = await asyncio.gather(*readers)
        assert loop.time() - started < PROMPT
        assert all(list(b.entries) == [(4, Status("generating"))] for b in batches)


async def test_readers_at_different_offsets_are_all_woken_with_what_they_missed(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 2)
        behind = await log.read(RUN, 1, 5.0)  # something is there: no wait
        assert list(behind.entries) == [(2, Delta("piece 2"))]
        waiting = [asyncio.create_task(log.read(RUN, 2, 5.0)) for _ in range(3)]
        await asyncio.sleep(0.02)
        await log.append(RUN, Delta("third"))
        for batch in await asyncio.gather(*waiting):
            assert list(batch.entries) == [(3, Delta("third"))]


async def test_a_reader_that_timed_out_does_not_stop_the_next_one_being_woken(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 1)
        assert (await log.read(RUN, 1, 0.01)).entries == []
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(log.read(RUN, 1, 5.0))
        await asyncio.sleep(0.02)
        started = loop.time()
        await log.append(RUN, Delta("later"))
        assert list((await reader).entries) == [(2, Delta("later"))]
        assert loop.time() - started < PROMPT


async def test_close_wakes_a_waiting_reader_with_a_closed_batch(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 2)
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(log.read(RUN, 2, 5.0))
        await asyncio.sleep(0.02)
        started = loop.time()
        await log.close(RUN)
        batch = await reader
        assert loop.time() - started < PROMPT
        assert batch == Batch(3, [], closed=True)


async def test_after_close_a_read_reaching_the_end_is_closed(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 3)
        await log.append(RUN, Complete("msg", "done"))
        await log.close(RUN)
        batch = await log.read(RUN, 1, 5.0)
        assert [seq for seq, _ in batch.entries] == [2, 3, 4]
        assert batch.entries[-1] == (4, Complete("msg", "done"))
        assert batch.closed is True


async def test_after_close_a_read_cut_short_by_max_batch_is_not_closed(
    new_log: NewLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ssechat.eventlog.memory.MAX_BATCH", 2)
    async with asyncio.timeout(5):
        events = deltas(5)
        log = await filled(new_log, 5)
        await log.close(RUN)
        first = await log.read(RUN, 0, 5.0)
        assert list(first.entries) == [(1, events[0]), (2, events[1])]
        assert first.closed is False
        second = await log.read(RUN, 2, 5.0)
        assert list(second.entries) == [(3, events[2]), (4, events[3])]
        assert second.closed is False
        last = await log.read(RUN, 4, 5.0)
        assert list(last.entries) == [(5, events[4])]
        assert last.closed is True


async def test_a_read_beyond_the_end_of_a_closed_log_is_empty_and_closed_at_once(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 3)
        await log.close(RUN)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for after in (3, 4, 100):
            batch = await log.read(RUN, after, 5.0)
            assert batch == Batch(after + 1, [], closed=True)
            assert len(batch.items) == 0  # a resume sends nothing
            assert batch.last == after
        assert loop.time() - started < PROMPT


async def test_appending_to_a_closed_log_raises_and_changes_nothing(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 2)
        await log.close(RUN)
        with pytest.raises(RuntimeError):
            await log.append(RUN, Delta("too late"))
        batch = await log.read(RUN, 0, 0)
        assert [seq for seq, _ in batch.entries] == [1, 2]
        assert batch.closed is True


async def test_closing_twice_is_harmless(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 1)
        await log.close(RUN)
        await log.close(RUN)
        assert (await log.read(RUN, 0, 0)).closed is True


async def test_a_closed_run_stays_readable_until_its_retention_passes_then_is_gone(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 2, retention=0.05)
        await log.close(RUN)
        assert [seq for seq, _ in (await log.read(RUN, 0, 0)).entries] == [1, 2]
        await asyncio.sleep(0.2)
        with pytest.raises(RunNotFound):
            await log.read(RUN, 0, 0)


async def test_retention_of_one_run_does_not_drop_another(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 1, retention=0.05)
        await log.append("run_other", Delta("still running"))
        await log.close(RUN)
        await asyncio.sleep(0.2)
        with pytest.raises(RunNotFound):
            await log.read(RUN, 0, 0)
        assert list((await log.read("run_other", 0, 0)).entries) == [(1, Delta("still running"))]


async def test_an_open_run_is_not_dropped_by_retention(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = await filled(new_log, 1, retention=0.05)
        await asyncio.sleep(0.2)
        assert [seq for seq, _ in (await log.read(RUN, 0, 0)).entries] == [1]


@pytest.mark.parametrize("after", [0, 1, 63, 64, 65, 127, 128, 129, 150, 200])
async def test_reads_across_the_logs_storage_chunks_miss_and_repeat_nothing(
    new_log: NewLog, after: int
) -> None:
    # 200 events with a status among them: the memory log keeps their messages joined 64 at a
    # time and a tail, so offsets on both sides of each boundary must give exactly the events
    # after them.
    async with asyncio.timeout(10):
        log = new_log()
        events: list[Event] = [*deltas(200)]
        events[99] = Status("generating")
        for event in events:
            await log.append(RUN, event)
        got, sent, done = [], b"", False
        cursor = after
        while not done:
            batch = await log.read(RUN, cursor, 0)
            got.extend(batch.entries)
            sent += CanonicalRenderer().render_items(batch.first, batch.items)
            done = not batch.entries
            cursor = batch.entries[-1][0] if batch.entries else cursor
        assert got == [(seq, events[seq - 1]) for seq in range(after + 1, 201)]
        # What a canonical replay sends: the memory log's own messages, cut at the same seqs.
        assert sent == b"".join(CanonicalRenderer().render(seq, e) for seq, e in got)


# --- listening: the in-memory log pushes to readers that have caught up -------------------


async def test_a_listener_gets_each_item_appended_then_the_end_in_order() -> None:
    log = MemoryEventLog()
    await log.append(RUN, Delta("before"))
    heard: list[tuple[int, object, bytes]] = []
    assert log.listen(RUN, 1, lambda *args: heard.append(args)) is not None
    await log.append(RUN, Delta("a"))
    await log.append(RUN, Status("generating"))
    await log.close(RUN)
    # A delta as the text the log keeps: the listener renders it without a Delta made for it;
    # and with each item, its canonical message, which a canonical stream sends as it is.
    canonical = CanonicalRenderer()
    assert heard == [
        (2, "a", canonical.render(2, Delta("a"))),
        (3, Status("generating"), canonical.render(3, Status("generating"))),
        (3, None, b""),
    ]


async def test_add_logs_text_and_events_at_once_as_append_does() -> None:
    log = MemoryEventLog()
    assert log.add(RUN, "a") == 1  # the first item makes the run's log
    heard: list[tuple[int, object]] = []
    assert log.listen(RUN, 1, lambda seq, item, _: heard.append((seq, item))) is not None
    assert log.add(RUN, Status("generating")) == 2
    assert await log.append(RUN, Delta("b")) == 3
    assert heard == [(2, Status("generating")), (3, "b")]
    batch = await log.read(RUN, 0, 0)
    assert batch.entries == [(1, Delta("a")), (2, Status("generating")), (3, Delta("b"))]
    await log.close(RUN)
    with pytest.raises(LogEnded):
        log.add(RUN, "c")


async def test_add_message_logs_an_event_given_as_its_type_and_payload() -> None:
    # What a replica's copy of a shared log is given: each event as Redis keeps it.
    log = MemoryEventLog()
    events: list[Event] = [Delta("a"), Status("generating"), Delta("b")]
    assert [log.add_message(RUN, e.type, dumps(e)) for e in events] == [1, 2, 3]
    batch = await log.read(RUN, 0, 0)
    assert batch.entries == list(enumerate(events, 1))
    canonical = CanonicalRenderer()
    assert canonical.render_items(1, batch.items) == b"".join(
        canonical.render(seq, e) for seq, e in enumerate(events, 1)
    )


@pytest.mark.parametrize("after", [0, 1])
async def test_a_reader_behind_the_end_cannot_listen_it_must_read_first(after: int) -> None:
    log = MemoryEventLog()
    for event in deltas(2):
        await log.append(RUN, event)
    assert log.listen(RUN, after, lambda seq, event, _: None) is None


async def test_an_ended_or_unknown_log_cannot_be_listened_to() -> None:
    log = MemoryEventLog()
    await log.append(RUN, Delta("a"))
    await log.close(RUN)
    assert log.listen(RUN, 1, lambda seq, event, _: None) is None
    assert log.listen("run_unknown", 0, lambda seq, event, _: None) is None


async def test_a_stopped_listener_hears_nothing_more_and_others_still_do() -> None:
    log = MemoryEventLog()
    await log.append(RUN, Delta("a"))
    first: list[int] = []
    second: list[int] = []
    stop = log.listen(RUN, 1, lambda seq, event, _: first.append(seq))
    assert stop is not None
    assert log.listen(RUN, 1, lambda seq, event, _: second.append(seq)) is not None
    await log.append(RUN, Delta("b"))
    stop()
    stop()  # twice is harmless
    await log.append(RUN, Delta("c"))
    assert (first, second) == ([2], [2, 3])


async def test_the_redis_log_never_pushes_its_readers_read(new_log: NewLog) -> None:
    log = new_log()
    await log.append(RUN, Delta("a"))
    pushes = log.listen(RUN, 1, lambda seq, event, _: None) is not None
    assert pushes == isinstance(log, MemoryEventLog)


# --- shared by several replicas (Redis only) ------------------------------------------------
#
# Two `RedisEventLog`s of one test share a server and a key prefix: two replicas.

redis_only = pytest.mark.parametrize("new_log", ["redis"], indirect=True)
OWNER_TTL = 0.3  # seconds a replica's marks outlive its last heartbeat
GONE = Error("interrupted", "the owner went away", retryable=True)


def replica(new_log: NewLog, **kwargs: float) -> SharedEventLog:
    log = new_log(**{"owner_ttl": OWNER_TTL, **kwargs})
    assert isinstance(log, SharedEventLog)
    return log


async def read_until_closed(log: EventLog, run_id: str, after: int = 0) -> list[Entry]:
    entries: list[Entry] = []
    while True:
        batch = await log.read(run_id, after, 1.0)
        entries += batch.entries
        if batch.entries:
            after = batch.entries[-1][0]
        if batch.closed:
            return entries


async def until_owner_gone(log: SharedEventLog, run_id: str) -> None:
    """Wait (polling; the caller's timeout is the hang guard) until no replica owns `run_id`."""
    # Polling: the state is on the server, there is no event to wait on.
    while not await log.orphans([run_id]):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


@redis_only
async def test_the_redis_log_is_a_shared_event_log_and_the_memory_log_is_not(
    new_log: NewLog,
) -> None:
    assert isinstance(new_log(), SharedEventLog)
    assert not isinstance(MemoryEventLog(), SharedEventLog)


@redis_only
async def test_a_run_written_by_one_replica_is_read_whole_by_another(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        for event in deltas(3):
            await a.append(RUN, event)
        assert list((await b.read(RUN, 0, 0)).entries) == list(enumerate(deltas(3), 1))
        assert list((await b.read(RUN, 2, 0)).entries) == [(3, Delta("piece 3"))]


@redis_only
async def test_a_reader_on_another_replica_resumes_a_live_run_missing_and_repeating_nothing(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(10):
        a, b = replica(new_log), replica(new_log)
        events = deltas(30)
        await a.append(RUN, events[0])
        first = await b.read(RUN, 0, 0)  # from here on b follows the run

        async def write() -> None:
            for event in events[1:]:
                await a.append(RUN, event)
                await asyncio.sleep(0.005)
            await a.close(RUN)

        writer = asyncio.create_task(write())
        seen = list(first.entries)
        while len(seen) < 10:  # a first connection, cut after some events
            batch = await b.read(RUN, seen[-1][0], 1.0)
            seen += batch.entries
        resumed = await read_until_closed(b, RUN, seen[-1][0])  # Last-Event-ID: the last seen
        await writer
        assert seen + resumed == list(enumerate(events, 1))


@redis_only
async def test_a_waiting_reader_on_another_replica_is_woken_by_an_append(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("first"))
        await b.read(RUN, 0, 0)
        reader = asyncio.create_task(b.read(RUN, 1, 4.0))
        await asyncio.sleep(0.05)
        assert not reader.done()  # it is really waiting
        await a.append(RUN, Delta("second"))
        # Woken, not timed out: a read that times out returns no entries.
        assert list((await reader).entries) == [(2, Delta("second"))]


@redis_only
async def test_close_on_one_replica_ends_the_log_for_a_reader_on_another(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("only"))
        assert (await b.read(RUN, 0, 0)).closed is False
        reader = asyncio.create_task(b.read(RUN, 1, 4.0))
        await asyncio.sleep(0.05)
        await a.close(RUN)
        assert await reader == Batch(2, [], closed=True)


@redis_only
async def test_a_log_gone_by_retention_is_run_not_found_on_every_replica(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log, retention=0.05), replica(new_log, retention=0.05)
        await a.append(RUN, Delta("x"))
        await a.close(RUN)
        await asyncio.sleep(0.3)
        for log in (a, b):
            with pytest.raises(RunNotFound):
                await log.read(RUN, 0, 0)


@redis_only
async def test_an_open_run_whose_owner_heartbeats_outlives_its_retention(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log, retention=0.05), replica(new_log, retention=0.05)
        await a.append(RUN, Delta("thinking for a long time before the next token"))
        for _ in range(12):  # 0.6 s of heartbeats, twice retention + owner_ttl
            assert await a.heartbeat([RUN], []) == set()
            await asyncio.sleep(0.05)
        assert [seq for seq, _ in (await b.read(RUN, 0, 0)).entries] == [1]


@redis_only
async def test_a_cancel_request_from_another_replica_reaches_the_owners_heartbeat(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("x"))
        await a.append("run_other", Delta("y"))
        assert await a.heartbeat([RUN, "run_other"], []) == set()
        assert await b.request_cancel(RUN) is True
        assert await a.heartbeat([RUN, "run_other"], []) == {RUN}


@redis_only
async def test_a_cancel_request_for_an_ended_or_unknown_run_is_refused(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("x"))
        await a.close(RUN)
        assert await b.request_cancel(RUN) is False
        assert await b.request_cancel("run_nobody") is False
        assert await a.heartbeat([RUN], []) == set()


@redis_only
async def test_a_run_is_no_orphan_while_its_owner_heartbeats(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("x"))
        for _ in range(10):  # 0.5 s: longer than OWNER_TTL
            await a.heartbeat([RUN], [])
            await asyncio.sleep(0.05)
            assert await b.orphans([RUN]) == {}
        assert await b.abandon(RUN, GONE) is False
        assert (await b.read(RUN, 0, 0)).closed is False


@redis_only
async def test_once_the_owners_mark_expires_the_run_is_an_orphan_ended_by_one_abandon(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("partial"))
        assert await b.orphans([RUN]) == {}  # the append marked a as its owner
        assert await b.abandon(RUN, GONE) is False
        await until_owner_gone(b, RUN)
        assert await b.orphans([RUN]) == {RUN: True}  # its log is still there to end
        assert await b.abandon(RUN, GONE) is True
        assert await b.abandon(RUN, GONE) is False  # ended once, by one caller
        batch = await b.read(RUN, 0, 0)
        assert list(batch.entries) == [(1, Delta("partial")), (2, GONE)]
        assert batch.closed is True
        assert await b.orphans([RUN]) == {}  # an ended log is nobody's orphan
        with pytest.raises(RuntimeError):  # the owner, if it comes back, cannot write on
            await a.append(RUN, Delta("late"))


@redis_only
async def test_concurrent_abandons_end_the_log_exactly_once(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        owner, *others = [replica(new_log) for _ in range(4)]
        await owner.append(RUN, Delta("partial"))
        await until_owner_gone(others[0], RUN)
        won = await asyncio.gather(*(log.abandon(RUN, GONE) for log in others))
        assert sorted(won) == [False, False, True]
        assert [e for _, e in (await others[0].read(RUN, 0, 0)).entries] == [Delta("partial"), GONE]


@redis_only
async def test_orphans_reports_a_log_that_no_longer_exists_as_gone(new_log: NewLog) -> None:
    async with asyncio.timeout(5):
        log = replica(new_log)
        assert await log.orphans(["run_nobody"]) == {"run_nobody": False}
        assert await log.orphans([]) == {}


@redis_only
async def test_followed_elsewhere_sees_only_another_replicas_subscriber_mark(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("x"))
        assert await a.followed_elsewhere(RUN) is False
        await a.heartbeat([], [RUN])  # a's own subscribers
        assert await a.followed_elsewhere(RUN) is False
        assert await b.followed_elsewhere(RUN) is True
        assert await b.followed_elsewhere("run_other") is False
        await asyncio.sleep(OWNER_TTL + 0.2)  # a renews nothing: its mark expires
        assert await b.followed_elsewhere(RUN) is False


@redis_only
async def test_followed_elsewhere_sees_another_replicas_mark_when_both_follow(
    new_log: NewLog,
) -> None:
    async with asyncio.timeout(5):
        a, b = replica(new_log), replica(new_log)
        await a.append(RUN, Delta("x"))
        await b.heartbeat([], [RUN])
        await a.heartbeat([], [RUN])
        assert await a.followed_elsewhere(RUN) is True  # b renewed its mark just now


@redis_only
async def test_aclose_returns_even_when_a_follower_is_sending_its_xread(
    new_log: NewLog,
) -> None:
    log = new_log()
    await log.append(RUN, Delta("x"))
    await log.read(RUN, 0, 0)  # starts the follower task
    await asyncio.sleep(0)  # its first step: it is now sending XREAD
    async with asyncio.timeout(5):
        await log.aclose()


async def test_ping_a_lost_server_and_every_call_is_event_log_unavailable_until_it_is_back() -> (
    None
):
    with redis_server() as server:  # a server of its own: the others' tests go on meanwhile
        log = RedisEventLog(server.url, prefix="down:")
        try:
            async with asyncio.timeout(20):
                await log.ping()
                await log.append(RUN, Delta("before"))
                assert list((await log.read(RUN, 0, 0)).entries) == [(1, Delta("before"))]
                reader = asyncio.create_task(log.read(RUN, 1, 10.0))
                await asyncio.sleep(0.05)
                server.stop()
                # A reader waiting on the run is not left waiting for its whole timeout: it
                # is woken, and its next read asks the server and reports it down.
                done, _ = await asyncio.wait([reader], timeout=3 * PROMPT)
                assert reader in done
                assert reader.result() == Batch(2, [], closed=False)
                with pytest.raises(EventLogUnavailable):
                    await log.read(RUN, 1, 0)
                for call in (
                    log.ping(),
                    log.append(RUN, Delta("during")),
                    log.read("run_new", 0, 0),
                    log.heartbeat([RUN], []),
                    log.request_cancel(RUN),
                ):
                    with pytest.raises(EventLogUnavailable) as caught:
                        await call
                    assert caught.value.status == 503
                    assert caught.value.code == "event_log_unavailable"
                    assert caught.value.retryable is True
                server.start()  # empty: it keeps nothing on disk
                await log.ping()
                assert await log.append("run_after", Delta("back")) == 1
                assert list((await log.read("run_after", 0, 0)).entries) == [(1, Delta("back"))]
        finally:
            await log.aclose()
