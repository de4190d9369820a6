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
    csv_url: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
