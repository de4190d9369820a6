"""The tables. Every row a user can see belongs to a user; every query filters by the caller.

Conversations have a surrogate key (`pk`) and a client-visible `id` unique per user, because
the seeds' clients choose their own conversation ids ("conv456", a session id) and two users
may well choose the same one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    # sha256 of the key: keys are long random strings, so a fast hash is enough to make a
    # stolen database useless for authenticating (unlike passwords, nothing to brute-force).
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20))  # shown in listings, to tell keys apart
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("user_id", "id"),
        Index("ix_conversations_user_updated", "user_id", "updated_at"),
    )

    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # Idempotent resubmits: one message per client-chosen id in a conversation.
        UniqueConstraint("conversation_pk", "client_message_id"),
        Index("ix_messages_conversation_pk", "conversation_pk", "pk"),
    )

    # Insertion order: a question and its answer are created in the same instant.
    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("conversations.pk", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text, default="")
    # complete | streaming | cancelled | interrupted | error
    status: Mapped[str] = mapped_column(String(20), default="complete", index=True)
    pipeline: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client_message_id: Mapped[str | None] = mapped_column(String(200))
    usage: Mapped[dict[str, Any] | None]
    sources: Mapped[list[Any] | None] = mapped_column(JSON)
    sql: Mapped[str | None] = mapped_column(Text)
    sql_dialect: Mapped[str | None] = mapped_column(String(50))  # the `sql` event's dialect
    csv_url: Mapped[str | None] = mapped_column(String(500))
    # The `csv` event as sent (url, rows, bytes); an answer saved before it has `csv_url` only.
    csv: Mapped[dict[str, Any] | None]
    # The `table` event as sent (columns, rows, row_count, truncated), so a reopened
    # conversation shows the preview without running the query again.
    table_preview: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessagePiece(Base):
    """Text a streaming answer generated since its last save, a row per save, in `pk` order
    (one process saves a run's pieces, one save at a time). The answer's `content` is its
    text before the first piece; its end writes the whole text there and deletes these."""

    __tablename__ = "message_pieces"
    __table_args__ = (Index("ix_message_pieces_message", "message_id", "pk"),)

    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)


class Document(Base):
    """A user's ingested file. Its `uri` (a path, or an upload's file name) is its identity:
    ingesting the same uri again replaces the document's chunks if the content changed."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("user_id", "uri"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    uri: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))  # of the file's bytes: unchanged → skipped
    mime: Mapped[str] = mapped_column(String(100))
    bytes: Mapped[int]
    chunk_count: Mapped[int] = mapped_column(default=0)
    # The model that embedded the chunks (dense retrieval); None: BM25 only.
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DocumentChunk(Base):
    """A passage of a document. `pk` is the rowid of the full-text index (SQLite FTS5
    `chunks_fts`, kept in sync by triggers; PostgreSQL: the generated `tsv` column), both
    created by migration 0002 and invisible to the ORM."""

    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("document_id", "ordinal"),)

    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    ordinal: Mapped[int]
    heading: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes | None]  # float32 vector, little-endian, unit length


class File(Base):
    """An exported file (a query's CSV) under `data_dir/files/<name>`. The unguessable `name`
    is its URL (`/v1/files/<name>`); only `user_id` may download it, until `expires_at`."""

    __tablename__ = "files"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    bytes: Mapped[int]
    rows: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
