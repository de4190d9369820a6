"""The store: SQLAlchemy 2 (async) over SQLite by default, PostgreSQL by URL.

The schema is owned by the Alembic migrations in `migrations/`, applied at start-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    String,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Update

from ssechat.errors import ApiError
from ssechat.ids import new_id
from ssechat.store.tables import ApiKey, Conversation, Message, MessagePiece, User, utcnow
from ssechat.store.writer import SqliteWriter

KEY_PREFIX = "sk-ssechat-"
_MIGRATIONS = Path(__file__).with_name("migrations")
_IN_MEMORY = (None, "", ":memory:")  # a SQLite database no second engine could open
P = ParamSpec("P")
T = TypeVar("T")


def sqlite_url(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{data_dir / 'ssechat.db'}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _migrate(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    # "heads": features add their tables on branches of their own off the initial revision.
    command.upgrade(config, "heads")


@dataclass(frozen=True, slots=True)
class Turn:
    """A question stored with its (streaming) answer, or the earlier one it repeats."""

    conversation_id: str
    question_id: str
    answer_id: str
    run_id: str
    history: tuple[Message, ...]
    repeated: bool = False  # the client_message_id was seen before: run_id is that run


_FINISH: dict[tuple[bool, tuple[str, ...]], Update] = {}


def _finish_statement(only_if_streaming: bool, columns: tuple[str, ...]) -> Update:
    """The UPDATE that ends an answer, setting `columns`: built once per shape, with bound
    parameters, since building one with its values cost more than running it."""
    key = (only_if_streaming, columns)
    query = _FINISH.get(key)
    if query is None:
        query = update(Message).where(Message.id == bindparam("message_id"))
        if only_if_streaming:
            query = query.where(Message.status == "streaming")
        query = _FINISH[key] = query.values({c: bindparam(f"set_{c}") for c in columns})
    return query


def _set(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as the parameters of `_finish_statement` (a column's own name is reserved)."""
    return {f"set_{column}": value for column, value in values.items()}


class Store:
    def __init__(self, engine: AsyncEngine, writer: Engine | None = None) -> None:
        self.engine = engine
        self.session = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a transaction that reads before it writes
        # fails at once with "database is locked" (no busy wait) when another wrote since it
        # began: with a hundred chats at once, some would get a 503. Taking turns in the
        # process costs nothing a single SQLite writer was not already paying.
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        self._users: set[str] = set()  # users known to exist (users are never deleted)
        self._writer = SqliteWriter(writer, self._write_turn) if writer is not None else None

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date."""
        # pre_ping: after the database was away, a pooled connection that died with it is
        # replaced on first use instead of failing one request per dead connection.
        sqlite = url.startswith("sqlite")
        engine = create_async_engine(url, pool_pre_ping=not sqlite)
        writer = None
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            parsed = make_url(url)
            if parsed.drivername == "sqlite+aiosqlite" and parsed.database not in _IN_MEMORY:
                writer = create_engine(parsed.set(drivername="sqlite"))  # the same file
                event.listen(writer, "connect", _sqlite_pragmas)
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
        return cls(engine, writer)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.aclose()
        await self.engine.dispose()

    async def write(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(session, *args, **kwargs)` in a transaction, committed before this returns:
        the writes every chat makes, written once as sync code. On a SQLite file they go to
        the store's `SqliteWriter`; on other databases (PostgreSQL), to an async session's
        `run_sync`."""
        with _unavailable_as_503():
            if self._writer is not None:
                return await self._writer.run(lambda s: fn(s, *args, **kwargs))
            async with self._write_turn, self.session.begin() as s:
                return await s.run_sync(fn, *args, **kwargs)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; a database that does not answer is a 503."""
        with _unavailable_as_503():
            async with self.session() as s:
                yield s

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """A transaction, committed at the end: every write goes through here (on SQLite,
        one at a time); a database that does not answer is a 503."""
        async with self._write_turn:
            with _unavailable_as_503():
                async with self.session.begin() as s:
                    yield s

    def ensure_user(self, s: Session, user_id: str) -> None:
        """Create the user on first sight, in transaction `s` (an async session's: through
        `run_sync`). A user found committed is remembered, so a user's later requests skip
        the query."""
        if user_id in self._users:
            return
        if s.get(User, user_id) is None:
            s.add(User(id=user_id))
            s.flush()  # not remembered yet: this transaction may still roll back
        else:
            self._users.add(user_id)

    async def ping(self) -> None:
        """Raise `StoreUnavailable` if the database cannot be reached."""
        async with self.read() as s:
            await s.execute(text("SELECT 1"))

    # -- users and keys ------------------------------------------------------------------

    async def create_key(self, user_id: str) -> str:
        """A new API key for `user_id` (created if needed); only its hash is kept."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self.begin() as s:
            await s.run_sync(self.ensure_user, user_id)
            s.add(ApiKey(hash=hash_key(key), prefix=key[: len(KEY_PREFIX) + 6], user_id=user_id))
        return key

    async def user_for_key(self, key: str) -> str | None:
        async with self.read() as s:
            found: str | None = await s.scalar(
                select(ApiKey.user_id).where(ApiKey.hash == hash_key(key))
            )
            return found

    async def has_keys(self) -> bool:
        async with self.read() as s:
            return bool(await s.scalar(select(func.count()).select_from(ApiKey)))

    async def list_keys(self) -> Sequence[ApiKey]:
        async with self.read() as s:
            return (await s.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()

    async def revoke_key(self, prefix: str) -> int:
        async with self.begin() as s:
            result = await s.execute(delete(ApiKey).where(ApiKey.prefix == prefix))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- turns: what a chat request stores ------------------------------------------------

    async def begin_turn(
        self,
        user_id: str,
        conversation_id: str | None,
        question: str,
        *,
        run_id: str,
        answer_id: str,
        pipeline: str,
        model: str,
        client_message_id: str | None = None,
        history_chars: int = 4000,
    ) -> Turn:
        """Store the question and an empty `streaming` answer; or, for a `client_message_id`
        already seen in this conversation, return the earlier turn untouched."""

        def attempt(s: Session) -> Turn:
            self.ensure_user(s, user_id)
            conv = _conversation(s, user_id, conversation_id) if conversation_id else None
            now = utcnow()
            history: tuple[Message, ...] = ()  # a new conversation's, and it is created `now`
            # Rows written once are inserted with Core: the ORM's unit of work cost more than
            # the rest of starting a chat.
            conn = s.connection()
            if conv is None:
                conv_id = conversation_id or new_id("conv")
                created = conn.execute(
                    insert(Conversation),
                    {
                        "id": conv_id,
                        "user_id": user_id,
                        "title": _title(question),
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                key = created.inserted_primary_key
                assert key is not None, "a single-row insert reports its key"
                conv_pk = key[0]
            else:
                conv_id, conv_pk = conv.id, conv.pk
                if client_message_id is not None:
                    earlier = s.scalar(
                        select(Message).where(
                            Message.conversation_pk == conv.pk,
                            Message.client_message_id == client_message_id,
                        )
                    )
                    if earlier is not None and earlier.run_id is not None:
                        answer = s.scalar(
                            select(Message.id).where(
                                Message.run_id == earlier.run_id, Message.role == "assistant"
                            )
                        )
                        return Turn(
                            conv.id, earlier.id, answer or "", earlier.run_id, (), repeated=True
                        )
                history = _history(s, conv.pk, history_chars)
                conv.updated_at = now
            question_id = new_id("msg")
            turn = dict(conversation_pk=conv_pk, run_id=run_id, created_at=now, updated_at=now)
            conn.execute(
                insert(Message),
                [  # in this order: a conversation's messages are ordered by their pk
                    {**turn, "id": question_id, "role": "user", "content": question,
                     "status": "complete", "client_message_id": client_message_id,
                     "pipeline": None, "model": None},
                    {**turn, "id": answer_id, "role": "assistant", "content": "",
                     "status": "streaming", "client_message_id": None,
                     "pipeline": pipeline, "model": model},
                ],
            )  # fmt: skip
            return Turn(conv_id, question_id, answer_id, run_id, history)

        for _ in range(2):  # a concurrent resubmit may win the unique constraint once
            try:
                return await self.write(attempt)
            except IntegrityError:
                continue
        raise RuntimeError("could not store the message")

    async def append_texts(self, pieces: Mapping[str, str]) -> None:
        """Add to streaming answers the text that came since their last save, by message id,
        in one transaction (a crash loses at most what came since); never to an answer that
        has ended (its end saved the whole text). Each is a row of its own (`MessagePiece`):
        saving a long answer every second costs what it grew, not its length."""
        if not pieces:
            return
        # Core and executemany: one statement for every run that grew, no ORM unit of work.
        await self.write(
            _execute, _ADD_PIECE, [{"message_id": k, "text": v} for k, v in pieces.items()]
        )

    async def finish(
        self,
        message_id: str,
        *,
        status: str,
        content: str,
        only_if_streaming: bool = False,
        **fields: Any,
    ) -> None:
        """Record how an answer ended: its status, whole text, usage, sources, sql, table
        preview, csv, error. `only_if_streaming`: unless something has recorded its end
        already."""
        values = {"status": status, "content": content, "updated_at": utcnow(), **fields}
        query = _finish_statement(only_if_streaming, tuple(values))

        def end(s: Session) -> None:  # Core, as for the turn's rows (begin_turn)
            conn = s.connection()
            conn.execute(query, {"message_id": message_id, **_set(values)})
            conn.execute(_DROP_PIECES, {"message_id": message_id})  # `content` has them all

        await self.write(end)

    async def streaming_runs(self, older_than: float, limit: int = 100) -> list[str]:
        """Runs whose answer has been `streaming` for more than `older_than` seconds."""
        since = utcnow() - timedelta(seconds=older_than)
        async with self.read() as s:
            found = await s.scalars(
                select(Message.run_id)
                .where(Message.status == "streaming", Message.created_at < since)
                .order_by(Message.created_at)
                .limit(limit)
            )
            return [run_id for run_id in found if run_id is not None]

    async def interrupt_streaming(self, run_ids: Collection[str] | None = None) -> int:
        """Answers left `streaming` by a process that is gone become `interrupted`, with the
        text saved so far: those of `run_ids`, or all of them (at the start of the only
        process)."""
        query = select(Message.id).where(Message.status == "streaming")
        if run_ids is not None:
            query = query.where(Message.run_id.in_(list(run_ids)))

        def interrupt(s: Session) -> int:
            ids = list(s.scalars(query))
            if not ids:
                return 0
            texts = _saved_pieces(s, ids)
            conn = s.connection()
            conn.execute(
                _INTERRUPT,
                [{"message_id": i, "pieces": texts.get(i, ""), "at": utcnow()} for i in ids],
            )
            conn.execute(delete(MessagePiece).where(MessagePiece.message_id.in_(ids)))
            return len(ids)

        return await self.write(interrupt)

    async def run_owner(self, run_id: str) -> str | None:
        """The user whose message a run answers; None for an unknown run."""
        async with self.read() as s:
            owner: str | None = await s.scalar(
                select(Conversation.user_id)
                .join(Message, Message.conversation_pk == Conversation.pk)
                .where(Message.run_id == run_id)
                .limit(1)
            )
            return owner

    # -- conversations -------------------------------------------------------------------

    async def create_conversation(self, user_id: str, title: str = "") -> Conversation:
        async with self.begin() as s:
            await s.run_sync(self.ensure_user, user_id)
            conv = Conversation(id=new_id("conv"), user_id=user_id, title=title)
            s.add(conv)
            return conv

    async def list_conversations(
        self, user_id: str, *, limit: int, before: tuple[datetime, int] | None = None
    ) -> Sequence[Conversation]:
        """Newest first; `before` is the (updated_at, pk) of the last row of the previous page."""
        query = select(Conversation).where(Conversation.user_id == user_id)
        if before is not None:
            at, pk = before
            query = query.where(
                (Conversation.updated_at < at)
                | ((Conversation.updated_at == at) & (Conversation.pk < pk))
            )
        query = query.order_by(Conversation.updated_at.desc(), Conversation.pk.desc()).limit(limit)
        async with self.read() as s:
            return (await s.scalars(query)).all()

    async def get_conversation(
        self, user_id: str, conversation_id: str
    ) -> tuple[Conversation, Sequence[Message]] | None:
        async with self.read() as s:
            conv = await s.run_sync(_conversation, user_id, conversation_id)
            if conv is None:
                return None
            messages = (
                await s.scalars(
                    select(Message).where(Message.conversation_pk == conv.pk).order_by(Message.pk)
                )
            ).all()
            streaming = [m for m in messages if m.status == "streaming"]
            if streaming:  # its text so far: what `content` had, then the pieces saved since
                texts = await s.run_sync(_saved_pieces, [m.id for m in streaming])
                for m in streaming:
                    set_committed_value(m, "content", m.content + texts.get(m.id, ""))
            return conv, messages

    async def rename_conversation(
        self, user_id: str, conversation_id: str, title: str
    ) -> Conversation | None:
        async with self.begin() as s:
            conv = await s.run_sync(_conversation, user_id, conversation_id)
            if conv is not None:
                conv.title, conv.updated_at = title, utcnow()
            return conv

    async def delete_conversation(self, user_id: str, conversation_id: str) -> bool:
        async with self.begin() as s:
            conv = await s.run_sync(_conversation, user_id, conversation_id)
            if conv is None:
                return False
            await s.execute(delete(Message).where(Message.conversation_pk == conv.pk))
            await s.delete(conv)
            return True


# A piece is added only while its answer streams: a save that lands after the answer's end
# (which wrote the whole text and dropped the pieces) adds nothing.
_ADD_PIECE = insert(MessagePiece).from_select(
    ["message_id", "text"],
    select(bindparam("message_id", type_=String), bindparam("text", type_=Text)).where(
        exists().where(Message.id == bindparam("message_id"), Message.status == "streaming")
    ),
)
_DROP_PIECES = delete(MessagePiece).where(MessagePiece.message_id == bindparam("message_id"))
_INTERRUPT = (
    update(Message)
    .where(Message.id == bindparam("message_id"), Message.status == "streaming")
    .values(
        status="interrupted",
        content=Message.content + bindparam("pieces"),
        updated_at=bindparam("at"),
    )
)


def _saved_pieces(s: Session, message_ids: Sequence[str]) -> dict[str, str]:
    """The text saved in pieces for each of these (streaming) answers, by message id."""
    texts: dict[str, list[str]] = {}
    rows = s.execute(
        select(MessagePiece.message_id, MessagePiece.text)
        .where(MessagePiece.message_id.in_(message_ids))
        .order_by(MessagePiece.pk)
    )
    for message_id, piece in rows:
        texts.setdefault(message_id, []).append(piece)
    return {k: "".join(v) for k, v in texts.items()}


def _title(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= 80 else line[:79] + "…"


def _execute(s: Session, statement: Any, params: Any) -> None:
    s.connection().execute(statement, params)


def _conversation(s: Session, user_id: str, conversation_id: str) -> Conversation | None:
    conv: Conversation | None = s.scalar(
        select(Conversation).where(
            Conversation.user_id == user_id, Conversation.id == conversation_id
        )
    )
    return conv


def _history(s: Session, conversation_pk: int, budget: int) -> tuple[Message, ...]:
    """The latest questions and finished answers that fit in `budget` characters, oldest
    first; a partial or failed answer is left out, its question kept, and the cut never
    leaves an answer without its question."""
    rows = s.scalars(
        select(Message)
        .where(
            Message.conversation_pk == conversation_pk,
            (Message.role == "user") | (Message.status == "complete"),
        )
        .order_by(Message.pk.desc())
        .limit(200)
    )
    kept: list[Message] = []
    for row in rows:
        budget -= len(row.content)
        if budget < 0:
            break
        kept.append(row)
    if kept and kept[-1].role == "assistant":
        kept.pop()
    return tuple(reversed(kept))


class StoreUnavailable(ApiError):
    code = "store_unavailable"
    status = 503
    retryable = True


@contextmanager
def _unavailable_as_503() -> Iterator[None]:
    """The database not answering (refused, dropped, shut down) is the client's 503, not a
    500: it is temporary, and the pool reconnects once the database is back. Integrity and
    programming errors are not caught: they are bugs or handled where they occur."""
    try:
        yield
    except (OperationalError, InterfaceError, OSError) as exc:
        raise StoreUnavailable(f"the database is unavailable: {type(exc).__name__}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer saving a streaming answer; synchronous=NORMAL,
    # SQLite's advice with WAL: a commit is not an fsync (a crash of the process loses
    # nothing; a power cut, the last commits); foreign keys: SQLite ignores them unless
    # asked; busy_timeout: a second process waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
