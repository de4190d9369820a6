"""The in-memory event log (ssechat.eventlog.memory.MemoryEventLog)."""

from __future__ import annotations

import asyncio

import pytest

from ssechat.errors import NotFound
from ssechat.eventlog import Batch, RunNotFound
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.events import Complete, Delta, Status

RUN = "run_test"
# A waiting read that is woken must return well before this; it is a hang guard, not a budget.
PROMPT = 1.0


def deltas(n: int) -> list[Delta]:
    return [Delta(f"piece {i}") for i in range(1, n + 1)]


async def filled(n: int, *, retention: float = 300.0, run_id: str = RUN) -> MemoryEventLog:
    log = MemoryEventLog(retention=retention)
    for event in deltas(n):
        await log.append(run_id, event)
    return log


async def test_append_returns_seqs_counting_from_one_without_gaps() -> None:
    async with asyncio.timeout(5):
        log = MemoryEventLog()
        assert [await log.append(RUN, e) for e in deltas(5)] == [1, 2, 3, 4, 5]


async def test_each_run_has_its_own_seqs() -> None:
    async with asyncio.timeout(5):
        log = MemoryEventLog()
        assert await log.append("run_a", Delta("a1")) == 1
        assert await log.append("run_b", Delta("b1")) == 1
        assert await log.append("run_a", Delta("a2")) == 2
        assert (await log.read("run_b", 0, 0)).entries == [(1, Delta("b1"))]


@pytest.mark.parametrize("after", [0, 1, 3, 4])
async def test_read_returns_exactly_the_entries_after_the_offset_with_their_seqs(
    after: int,
) -> None:
    async with asyncio.timeout(5):
        events = deltas(5)
        log = await filled(5)
        batch = await log.read(RUN, after, 0)
        assert list(batch.entries) == [(seq, events[seq - 1]) for seq in range(after + 1, 6)]
        assert batch.closed is False


async def test_read_of_an_unknown_run_raises_run_not_found_a_404() -> None:
    async with asyncio.timeout(5):
        log = await filled(1)
        with pytest.raises(RunNotFound) as caught:
            await log.read("run_nobody", 0, 0)
        assert isinstance(caught.value, NotFound)
        assert caught.value.status == 404
        assert caught.value.code == "run_not_found"


async def test_read_of_an_unknown_run_fails_at_once_even_with_a_timeout() -> None:
    async with asyncio.timeout(5):
        log = MemoryEventLog()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RunNotFound):
            await log.read("run_nobody", 0, 3.0)
        assert loop.time() - started < PROMPT


async def test_a_read_with_nothing_new_waits_for_the_timeout_then_returns_an_open_empty_batch() -> (
    None
):
    async with asyncio.timeout(5):
        log = await filled(2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        batch = await log.read(RUN, 2, 0.1)
        assert loop.time() - started >= 0.09
        assert batch == Batch([], closed=False)


async def test_a_waiting_read_is_woken_by_an_append_long_before_its_timeout() -> None:
    async with asyncio.timeout(5):
        log = await filled(1)
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


async def test_one_append_wakes_every_waiting_reader() -> None:
    async with asyncio.timeout(5):
        log = await filled(3)
        loop = asyncio.get_running_loop()
        readers = [asyncio.create_task(log.read(RUN, 3, 5.0)) for _ in range(50)]
        await asyncio.sleep(0.02)
        assert not any(r.done() for r in readers)
        started = loop.time()
        await log.append(RUN, Status("generating"))
        batches = await asyncio.gather(*readers)
        assert loop.time() - started < PROMPT
        assert all(list(b.entries) == [(4, Status("generating"))] for b in batches)


async def test_readers_at_different_offsets_are_all_woken_with_what_they_missed() -> None:
    async with asyncio.timeout(5):
        log = await filled(2)
        behind = await log.read(RUN, 1, 5.0)  # something is there: no wait
        assert list(behind.entries) == [(2, Delta("piece 2"))]
        waiting = [asyncio.create_task(log.read(RUN, 2, 5.0)) for _ in range(3)]
        await asyncio.sleep(0.02)
        await log.append(RUN, Delta("third"))
        for batch in await asyncio.gather(*waiting):
            assert list(batch.entries) == [(3, Delta("third"))]


async def test_a_reader_that_timed_out_does_not_stop_the_next_one_being_woken() -> None:
    async with asyncio.timeout(5):
        log = await filled(1)
        assert (await log.read(RUN, 1, 0.01)).entries == []
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(log.read(RUN, 1, 5.0))
        await asyncio.sleep(0.02)
        started = loop.time()
        await log.append(RUN, Delta("later"))
        assert list((await reader).entries) == [(2, Delta("later"))]
        assert loop.time() - started < PROMPT


async def test_close_wakes_a_waiting_reader_with_a_closed_batch() -> None:
    async with asyncio.timeout(5):
        log = await filled(2)
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(log.read(RUN, 2, 5.0))
        await asyncio.sleep(0.02)
        started = loop.time()
        await log.close(RUN)
        batch = await reader
        assert loop.time() - started < PROMPT
        assert batch == Batch([], closed=True)


async def test_after_close_a_read_reaching_the_end_is_closed() -> None:
    async with asyncio.timeout(5):
        log = await filled(3)
        await log.append(RUN, Complete("msg", "done"))
        await log.close(RUN)
        batch = await log.read(RUN, 1, 5.0)
        assert [seq for seq, _ in batch.entries] == [2, 3, 4]
        assert batch.entries[-1] == (4, Complete("msg", "done"))
        assert batch.closed is True


async def test_after_close_a_read_cut_short_by_max_batch_is_not_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ssechat.eventlog.memory.MAX_BATCH", 2)
    async with asyncio.timeout(5):
        events = deltas(5)
        log = await filled(5)
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


async def test_a_read_beyond_the_end_of_a_closed_log_is_empty_and_closed_at_once() -> None:
    async with asyncio.timeout(5):
        log = await filled(3)
        await log.close(RUN)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for after in (3, 4, 100):
            assert await log.read(RUN, after, 5.0) == Batch([], closed=True)
        assert loop.time() - started < PROMPT


async def test_appending_to_a_closed_log_raises_and_changes_nothing() -> None:
    async with asyncio.timeout(5):
        log = await filled(2)
        await log.close(RUN)
        with pytest.raises(RuntimeError):
            await log.append(RUN, Delta("too late"))
        batch = await log.read(RUN, 0, 0)
        assert [seq for seq, _ in batch.entries] == [1, 2]
        assert batch.closed is True


async def test_closing_twice_is_harmless() -> None:
    async with asyncio.timeout(5):
        log = await filled(1)
        await log.close(RUN)
        await log.close(RUN)
        assert (await log.read(RUN, 0, 0)).closed is True


async def test_a_closed_run_stays_readable_until_its_retention_passes_then_is_gone() -> None:
    async with asyncio.timeout(5):
        log = await filled(2, retention=0.05)
        await log.close(RUN)
        assert [seq for seq, _ in (await log.read(RUN, 0, 0)).entries] == [1, 2]
        await asyncio.sleep(0.2)
        with pytest.raises(RunNotFound):
            await log.read(RUN, 0, 0)


async def test_retention_of_one_run_does_not_drop_another() -> None:
    async with asyncio.timeout(5):
        log = await filled(1, retention=0.05)
        await log.append("run_other", Delta("still running"))
        await log.close(RUN)
        await asyncio.sleep(0.2)
        with pytest.raises(RunNotFound):
            await log.read(RUN, 0, 0)
        assert list((await log.read("run_other", 0, 0)).entries) == [(1, Delta("still running"))]


async def test_an_open_run_is_not_dropped_by_retention() -> None:
    async with asyncio.timeout(5):
        log = await filled(1, retention=0.05)
        await asyncio.sleep(0.2)
        assert [seq for seq, _ in (await log.read(RUN, 0, 0)).entries] == [1]
