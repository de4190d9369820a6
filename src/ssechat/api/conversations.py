"""Conversations per user: create, list (newest first, paginated), read, rename, delete.

Another user's conversation answers exactly as one that does not exist: 404.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ssechat.api import services
from ssechat.auth import User
from ssechat.errors import BadRequest, NotFound
from ssechat.services import Services
from ssechat.store.tables import Conversation

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
Svc = Annotated[Services, Depends(services)]


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    content: str
    status: str
    pipeline: str | None
    model: str | None
    run_id: str | None
    client_message_id: str | None
    usage: dict[str, Any] | None
    sources: list[Any] | None
    sql: str | None
    sql_dialect: str | None = Field(description="The `sql` event's dialect, e.g. `sqlite`.")
    table_preview: dict[str, Any] | None = Field(
        description="The answer's `table` event: columns, rows (a preview), row_count, truncated."
    )
    csv_url: str | None
    csv: dict[str, Any] | None = Field(
        description="The answer's `csv` event: url, rows, bytes (null for an answer saved "
        "before it was kept: then `csv_url` alone)."
    )
    error: dict[str, Any] | None
    created_at: datetime


class ConversationWithMessages(ConversationOut):
    messages: list[MessageOut]


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class TitleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=200)


def _encode_cursor(conv: Conversation) -> str:
    raw = orjson.dumps([conv.updated_at.isoformat(), conv.pk])
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, pk = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), int(pk)
    except (ValueError, TypeError) as exc:
        raise BadRequest("cursor is not one this server gave out", code="invalid_cursor") from exc


@router.post("", status_code=201)
async def create_conversation(user: User, svc: Svc, body: TitleIn | None = None) -> ConversationOut:
    conv = await svc.store.create_conversation(user, body.title if body else "")
    return ConversationOut.model_validate(conv)


@router.get("")
async def list_conversations(
    user: User,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> ConversationPage:
    before = _decode_cursor(cursor) if cursor else None
    rows = await svc.store.list_conversations(user, limit=limit + 1, before=before)
    page = rows[:limit]
    more = len(rows) > limit
    return ConversationPage(
        data=[ConversationOut.model_validate(c) for c in page],
        next_cursor=_encode_cursor(page[-1]) if more else None,
    )


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: str, user: User, svc: Svc) -> ConversationWithMessages:
    found = await svc.store.get_conversation(user, conversation_id)
    if found is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    conv, messages = found
    return ConversationWithMessages(
        **ConversationOut.model_validate(conv).model_dump(),
        messages=[MessageOut.model_validate(m) for m in messages],
    )


@router.patch("/{conversation_id}")
async def rename_conversation(
    conversation_id: str, body: TitleIn, user: User, svc: Svc
) -> ConversationOut:
    conv = await svc.store.rename_conversation(user, conversation_id, body.title)
    if conv is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    return ConversationOut.model_validate(conv)


@router.delete("/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: str, user: User, svc: Svc) -> Response:
    if not await svc.store.delete_conversation(user, conversation_id):
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    return Response(status_code=204)
