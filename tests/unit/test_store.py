"""The store on a real SQLite file: migrations, keys, turns, history, ownership."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from ssechat.store import Store, hash_key, sqlite_url
from ssechat.store.tables import Base, Message, MessagePiece


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url(tmp_path))
    yield opened
    await opened.close()


async def turn(
    store: Store, user: str, conv: str | None, text: str, n: int, **kw: object
) -> object:
    return await store.begin_turn(
        user, conv, text, run_id=f"run_{n}", answer_id=f"msg_{n}", pipeline="chat", model="m",
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def not_full_text_index(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
    # Retrieval's full-text index (SQLite: the FTS5 table and its shadow tables; PostgreSQL:
    # the generated `chunks.tsv` column and its GIN index) is created and queried by raw SQL
    # in migration 0002 and retrieval/search.py: it has no ORM model to compare with.
    name = name or ""
    return not (
        (type_ == "table" and name.startswith("chunks_fts"))
        or (type_ == "column" and name == "tsv" and parent.get("table_name") == "chunks")
        or (type_ == "index" and name == "ix_chunks_tsv")
    )


async def test_the_migrated_schema_matches_the_tables(store: Store) -> None:
    opts = {"include_name": not_full_text_index}
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts=opts), Base.metadata
            )
        )
    assert diff == []


async def test_opening_twice_leaves_the_schema_and_data_alone(tmp_path: Path) -> None:
    first = await Store.open(sqlite_url(tmp_path))
    key = await first.create_key("alice")
    await first.close()
    second = await Store.open(sqlite_url(tmp_path))
    assert await second.user_for_key(key) == "alice"
    await second.close()


async def test_keys_are_stored_only_as_hashes(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store
    key = await store.create_key("alice")
    assert key.startswith("sk-ssechat-")
    assert len(key) > 40
    assert await store.user_for_key(key) == "alice"
    assert await store.user_for_key(key + "x") is None
    database = (tmp_path / "ssechat.db").read_bytes() + (tmp_path / "ssechat.db-wal").read_bytes()
    assert key.encode() not in database
    assert hash_key(key).encode() in database


async def test_a_revoked_key_no_longer_authenticates(store: Store) -> None:
    key = await store.create_key("alice")
    (listed,) = await store.list_keys()
    assert key.startswith(listed.prefix)
    assert await store.revoke_key(listed.prefix) == 1
    assert await store.user_for_key(key) is None
    assert not await store.has_keys()


async def test_history_keeps_the_latest_turns_within_the_budget_oldest_first(store: Store) -> None:
    first = await turn(store, "alice", "c", "q1 " + "x" * 50, 1)
    conv = first.conversation_id  # type: ignore[attr-defined]
    await store.finish("msg_1", status="complete", content="a1 " + "y" * 50)
    await turn(store, "alice", conv, "q2", 2)
    await store.finish("msg_2", status="complete", content="a2")
    third = await turn(store, "alice", conv, "q3", 3, history_chars=60)
    history = [(m.role, m.content) for m in third.history]  # type: ignore[attr-defined]
    # q1 + a1 + q2 + a2 is 110 characters: a1 fits the remaining budget, but not without q1
    assert history == [("user", "q2"), ("assistant", "a2")]


async def test_history_leaves_out_unfinished_answers_but_keeps_their_questions(
    store: Store,
) -> None:
    await turn(store, "alice", "c", "q1", 1)
    await store.finish("msg_1", status="cancelled", content="half an ans")
    second = await turn(store, "alice", "c", "q2", 2)
    assert [(m.role, m.content) for m in second.history] == [("user", "q1")]  # type: ignore[attr-defined]


async def test_a_repeated_client_message_id_returns_the_earlier_turn(store: Store) -> None:
    first = await turn(store, "alice", "c", "q", 1, client_message_id="k")
    again = await turn(store, "alice", "c", "q", 2, client_message_id="k")
    assert again.repeated  # type: ignore[attr-defined]
    assert again.run_id == first.run_id == "run_1"  # type: ignore[attr-defined]
    found = await store.get_conversation("alice", "c")
    assert found is not None
    assert len(found[1]) == 2


async def test_two_users_may_choose_the_same_conversation_id(store: Store) -> None:
    await turn(store, "alice", "shared", "alice's question", 1)
    await turn(store, "bob", "shared", "bob's question", 2)
    alice = await store.get_conversation("alice", "shared")
    bob = await store.get_conversation("bob", "shared")
    assert alice is not None
    assert bob is not None
    assert [m.content for m in alice[1]] == ["alice's question", ""]
    assert [m.content for m in bob[1]] == ["bob's question", ""]
    assert await store.run_owner("run_1") == "alice"
    assert await store.run_owner("run_2") == "bob"
    assert await store.run_owner("run_9") is None


async def test_answers_left_streaming_become_interrupted(store: Store) -> None:
    await turn(store, "alice", "c", "q", 1)
    await store.append_texts({"msg_1": "part"})
    await store.append_texts({"msg_1": "ial"})
    assert await store.interrupt_streaming() == 1
    found = await store.get_conversation("alice", "c")
    assert found is not None
    answer = found[1][1]
    assert (answer.status, answer.content) == ("interrupted", "partial")


async def test_progress_of_several_answers_is_saved_at_once_never_onto_an_ended_one(
    store: Store,
) -> None:
    await turn(store, "alice", "c", "q1", 1)
    await turn(store, "alice", "d", "q2", 2)
    await store.append_texts({"msg_1": "so ", "msg_2": "the "})
    await store.finish("msg_2", status="complete", content="the whole answer")
    await store.append_texts({"msg_1": "far", "msg_2": " late piece"})
    texts = {}
    for conv in ("c", "d"):
        found = await store.get_conversation("alice", conv)
        assert found is not None
        answer = found[1][1]
        texts[answer.id] = (answer.status, answer.content)
    assert texts == {
        "msg_1": ("streaming", "so far"),
        "msg_2": ("complete", "the whole answer"),
    }


async def test_a_save_writes_only_what_came_since_and_the_end_keeps_no_pieces(
    store: Store,
) -> None:
    async def rows() -> list[tuple[str, str, str]]:
        async with store.read() as s:
            found = await s.execute(
                select(Message.id, Message.content, MessagePiece.text)
                .join(MessagePiece, MessagePiece.message_id == Message.id)
                .order_by(MessagePiece.pk)
            )
            return [tuple(row) for row in found]  # type: ignore[misc]

    for n, conv in ((1, "c"), (2, "d"), (3, "e")):
        await turn(store, "alice", conv, "q", n)
    await store.append_texts({"msg_1": "a long ", "msg_2": "x", "msg_3": "y"})
    await store.append_texts({"msg_1": "answer"})
    # The answer's row is not rewritten at each save: each save is a row of its new text.
    assert await rows() == [
        ("msg_1", "", "a long "), ("msg_2", "", "x"), ("msg_3", "", "y"), ("msg_1", "", "answer")
    ]  # fmt: skip
    await store.finish("msg_1", status="complete", content="a long answer")
    assert await store.interrupt_streaming(["run_2"]) == 1
    assert await store.delete_conversation("alice", "e")
    assert await rows() == []  # ended (its text is in `content`), or deleted
    found = await store.get_conversation("alice", "d")
    assert found is not None
    assert (found[1][1].status, found[1][1].content) == ("interrupted", "x")


async def test_only_the_named_runs_answers_are_interrupted(store: Store) -> None:
    await turn(store, "alice", "c", "q1", 1)
    await turn(store, "alice", "d", "q2", 2)
    assert await store.interrupt_streaming(["run_2", "run_unknown"]) == 1
    statuses = {
        conv: (await store.get_conversation("alice", conv))[1][1].status  # type: ignore[index]
        for conv in ("c", "d")
    }
    assert statuses == {"c": "streaming", "d": "interrupted"}


async def test_streaming_runs_lists_only_answers_streaming_for_longer_than_asked(
    store: Store,
) -> None:
    await turn(store, "alice", "c", "q1", 1)
    await turn(store, "alice", "d", "q2", 2)
    await store.finish("msg_2", status="complete", content="done")
    assert await store.streaming_runs(older_than=60) == []  # both just began
    assert await store.streaming_runs(older_than=-1) == ["run_1"]


async def test_finish_only_if_streaming_leaves_an_answer_that_has_ended_alone(store: Store) -> None:
    await turn(store, "alice", "c", "q", 1)
    await store.finish("msg_1", status="interrupted", content="all of it")
    await store.finish("msg_1", status="interrupted", content="less", only_if_streaming=True)
    found = await store.get_conversation("alice", "c")
    assert found is not None
    assert found[1][1].content == "all of it"


async def test_an_answers_table_preview_is_stored_with_it_as_sent(store: Store) -> None:
    preview = {
        "columns": ["name", "price", "discontinued"],
        "rows": [["Kettle", 24.5, None], ["Mug 😀", 8, True]],
        "row_count": 40,
        "truncated": False,
    }
    await turn(store, "alice", "c", "q", 1)
    await store.finish(
        "msg_1", status="complete", content="two of forty", sql="SELECT …", table_preview=preview
    )
    found = await store.get_conversation("alice", "c")
    assert found is not None
    question, answer = found[1]
    assert answer.table_preview == preview
    assert question.table_preview is None


async def test_deleting_a_conversation_deletes_its_messages(store: Store) -> None:
    await turn(store, "alice", "c", "q", 1)
    assert not await store.delete_conversation("bob", "c")
    assert await store.delete_conversation("alice", "c")
    assert await store.get_conversation("alice", "c") is None
    assert await store.run_owner("run_1") is None


async def test_a_hundred_and_fifty_turns_at_once_are_all_stored(store: Store) -> None:
    # SQLite fails a transaction that reads before it writes at once ("database is locked")
    # when another wrote meanwhile: concurrent chats must take turns instead of getting 503s.
    turns = await asyncio.gather(
        *(turn(store, f"user{n % 7}", f"conv{n % 11}", f"q{n}", n) for n in range(150))
    )
    assert len({t.run_id for t in turns}) == 150  # type: ignore[attr-defined]
    assert set(await store.streaming_runs(older_than=-1, limit=1000)) == {
        f"run_{n}" for n in range(150)
    }


async def test_a_write_that_fails_among_others_at_once_fails_alone(store: Store) -> None:
    # On SQLite the writes that wait together share a transaction: one failing must not take
    # the others down with it.
    def broken(session: object) -> None:
        raise ValueError("a bug in one write")

    results = await asyncio.gather(
        turn(store, "alice", "c", "q1", 1),
        store.write(broken),
        turn(store, "alice", "c", "q2", 2),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    found = await store.get_conversation("alice", "c")
    assert found is not None
    # Sorted: on PostgreSQL the two turns are concurrent transactions, in either order.
    assert sorted(m.content for m in found[1] if m.role == "user") == ["q1", "q2"]
