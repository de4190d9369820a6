"""The seeds' routes and the AI SDK's: each takes its client's request body, starts an ordinary
run (`start_chat`: validation, persistence, resume and stop as on `/v1/chat/stream`) and streams
it in its client's dialect; `?format=<dialect>` picks another. docs/compat.md has the table.

Which pipeline answers each route is the setting `compat_pipelines` (by dialect). A model a
seed's body names (seed 003 sends `"model": "mistral"`) is used when it is the one this server
serves and otherwise ignored: clients written for another server must work unchanged.

Users are who the user dependency says (API key, trusted header, local user, or a host app's
own auth under `mount`). Seed 000 also sends its user in the body (`headers["x-user-id"]` or
`user_id`): that is honoured only when the server trusts a header for the user and the request
does not carry that header itself; the body's user then stands in for the header (and is
trusted exactly as much). In every other mode body user ids are ignored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import Scope

from ssechat.api import parse_body, services, validation_message
from ssechat.api.chat import ChatRequest, start_chat
from ssechat.api.conversations import ConversationOut, ConversationWithMessages, MessageOut
from ssechat.api.runs import check_owner, renderer_for, stream_run
from ssechat.auth import User
from ssechat.config import Settings
from ssechat.dialects.ai_sdk import AiSdkRenderer
from ssechat.dialects.delta import DeltaRenderer
from ssechat.dialects.keyed import KeyedRenderer
from ssechat.dialects.message import MessageRenderer, message_body
from ssechat.dialects.typed import TypedRenderer
from ssechat.dialects.vanna import VannaRenderer
from ssechat.errors import BadRequest
from ssechat.eventlog import RunNotFound
from ssechat.events import Error
from ssechat.ids import new_id
from ssechat.models import Message, Role
from ssechat.runs import read_to_end
from ssechat.services import Services
from ssechat.transport import EventStreamResponse

router = APIRouter(tags=["compatible clients"])
Svc = Annotated[Services, Depends(services)]
Format = Annotated[
    str | None, Query(description="Stream in this dialect instead of the route's own.")
]


# -- shared by the compatible routes (and api/openai.py) -------------------------------------


def pipeline_for(settings: Settings, dialect: str) -> str:
    """The pipeline behind `dialect`'s routes (the setting keeps defaults for the others)."""
    return settings.compat_pipelines.get(dialect, "chat")


def chat_request(
    svc: Services,
    dialect: str,
    message: str,
    *,
    conversation_id: str | None = None,
    model: str | None = None,
    params: dict[str, Any] | None = None,
) -> ChatRequest:
    """A canonical chat request for a compatible route; a bad field is a 400, as anywhere."""
    try:
        return ChatRequest(
            message=message,
            conversation_id=conversation_id,
            pipeline=pipeline_for(svc.settings, dialect),
            model=model if model == svc.model.model else None,
            params=params or {},
        )
    except ValidationError as exc:
        raise BadRequest(validation_message(exc), code="invalid_request") from exc


def failure_status(error: Error) -> int:
    """The HTTP status of a non-streaming answer whose run ended with `error`."""
    if error.code == "cancelled":
        return 409
    if error.code == "model_error":
        return 502
    return 503 if error.retryable or error.code == "interrupted" else 500


def _text(value: object) -> str | None:
    """A body field that should be an id, as a string; None when absent or blank."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


# -- seed 000: POST /api/vanna/v2/chat_sse ---------------------------------------------------


class BodyUserRoute(APIRoute):
    """A route whose clients send their user in the body (seed 000). When the server trusts a
    header for the user and the request lacks it, the body's user is put in that header before
    anything reads it, so the ordinary user dependency (or a host app's override of it, see
    `mount`) is what decides; in every other mode the body's user is never looked at."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_body_user(request: Request) -> Response:
            return await handler(await _body_user_as_header(request))

        return with_body_user


class _Replayed(Request):
    """The request again, its body already read."""

    def __init__(self, scope: Scope, body: bytes) -> None:
        super().__init__(scope)
        self._body = body


async def _body_user_as_header(request: Request) -> Request:
    svc: Services | None = getattr(request.app.state, "ssechat", None)
    header = svc.settings.trusted_user_header if svc is not None else None
    if svc is None or not header or request.headers.get(header, "").strip():
        return request
    body = bytearray()
    async for chunk in request.stream():  # capped: parse_body refuses what is over the limit
        body += chunk
        if len(body) > svc.settings.max_body_bytes:
            break
    user = None
    with contextlib.suppress(orjson.JSONDecodeError, ValidationError):
        parsed = VannaBody.model_validate(orjson.loads(body))
        user = _text(parsed.headers.get("x-user-id")) or _text(parsed.user_id)
    scope = request.scope
    if user is not None and user.isascii() and user.isprintable():
        headers = [*scope["headers"], (header.lower().encode(), user.encode())]
        scope = {**scope, "headers": headers}
    return _Replayed(scope, bytes(body))


class VannaBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str
    headers: dict[str, Any] = Field(default_factory=dict)
    conversation_id: str | int | None = None
    user_id: str | int | None = None


_vanna = APIRouter(route_class=BodyUserRoute, tags=router.tags)


@_vanna.post("/api/vanna/v2/chat_sse", response_class=EventStreamResponse)
async def vanna_chat_sse(request: Request, user: User, svc: Svc, format: Format = None) -> Response:
    """Seed 000 (Vanna): `{message, headers: {x-user-id, x-conversation-id}, conversation_id,
    user_id}` → `event: start/chunk/sql/csv/complete/error`."""
    renderer = renderer_for(format) if format else VannaRenderer()
    body = await parse_body(request, VannaBody, svc.settings.max_body_bytes)
    conversation = _text(body.headers.get("x-conversation-id")) or _text(body.conversation_id)
    chat = chat_request(svc, "vanna", body.message, conversation_id=conversation)
    return await stream_run(svc, await start_chat(svc, chat, user), 0, renderer)


router.routes.extend(_vanna.routes)  # its route, built by BodyUserRoute; flat (see app.py)


# -- seed 001: POST /api/chat/stream, POST /chat/stream --------------------------------------


class KeyedBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str
    session_id: str | int | None = None


@router.post("/api/chat/stream", response_class=EventStreamResponse)
@router.post("/chat/stream", response_class=EventStreamResponse)
async def keyed_stream(request: Request, user: User, svc: Svc, format: Format = None) -> Response:
    """Seed 001: `{message, session_id}` → `data: {"stage"|"token"|"sources"|…}`, `[DONE]`."""
    renderer = renderer_for(format) if format else KeyedRenderer()
    body = await parse_body(request, KeyedBody, svc.settings.max_body_bytes)
    chat = chat_request(svc, "keyed", body.message, conversation_id=_text(body.session_id))
    return await stream_run(svc, await start_chat(svc, chat, user), 0, renderer)


# -- seed 002: GET /api/chat/stream?message=, POST /api/chat/message -------------------------


def _resume_point(last_event_id: str | None) -> tuple[str, int] | None:
    """The run and seq in a `Last-Event-ID` this route gave out (`<run_id>:<seq>`)."""
    run_id, sep, seq = (last_event_id or "").strip().rpartition(":")
    if not sep or not run_id or not seq.isdigit():
        return None
    return run_id, int(seq)


@router.get("/api/chat/stream", response_class=EventStreamResponse)
async def message_stream(
    user: User,
    svc: Svc,
    message: Annotated[str, Query(description="The question.")],
    conversation_id: str | None = None,
    last_event_id: Annotated[str | None, Header()] = None,
    format: Format = None,
) -> Response:
    """Seed 002, for an `EventSource`: `event: connected`, `message`…, `done` (or `error`).

    Its ids name the run, so the EventSource's own reconnect resumes the same answer instead of
    asking again; once it has seen the end it gets 204, which makes it stop."""
    if format:
        renderer_for(format)  # refuse an unknown format before anything starts
    if resume := _resume_point(last_event_id):
        run_id, after = resume
        await check_owner(svc, run_id, user)
    else:
        chat = chat_request(svc, "message", message, conversation_id=conversation_id)
        run_id, after = await start_chat(svc, chat, user), 0
    renderer = renderer_for(format) if format else MessageRenderer(id_prefix=f"{run_id}:")
    return await stream_run(svc, run_id, after, renderer)


class MessageBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str
    conversation_id: str | None = None


def _wants_json(accept: str | None) -> bool:
    accept = (accept or "").lower()
    return "application/json" in accept and "text/event-stream" not in accept


@router.post("/api/chat/message", response_class=EventStreamResponse)
async def message_post(request: Request, user: User, svc: Svc, format: Format = None) -> Response:
    """Seed 002's POST variant: `{message}` → `event: message` updates, as the seed's fetch
    client reads them; with `Accept: application/json`, the whole answer as one JSON body."""
    renderer = renderer_for(format) if format else MessageRenderer(id_prefix=None, lifecycle=False)
    body = await parse_body(request, MessageBody, svc.settings.max_body_bytes)
    chat = chat_request(svc, "message", body.message, conversation_id=body.conversation_id)
    run_id = await start_chat(svc, chat, user)
    if not _wants_json(request.headers.get("accept")):
        return await stream_run(svc, run_id, 0, renderer)
    events = await read_to_end(svc.runs, run_id)
    headers = {"x-run-id": run_id}
    end = events[-1] if events else Error("internal_error", "the run left no events")
    if isinstance(end, Error):
        error = {"code": end.code, "message": end.message}
        return JSONResponse({"error": error}, status_code=failure_status(end), headers=headers)
    return JSONResponse(message_body(events), headers=headers)


# -- seed 003: POST /chat/{session_id}/stream --------------------------------------------------


class TypedBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: str
    model: str | None = None


@router.post("/chat/{session_id}/stream", response_class=EventStreamResponse)
@router.post("/api/chat/{session_id}/stream", response_class=EventStreamResponse)
async def typed_stream(
    session_id: str, request: Request, user: User, svc: Svc, format: Format = None
) -> Response:
    """Seed 003: `{question, model}` → `data: {"type": "start"|"status"|"sources"|"chunk"|
    "metadata"|"done"|"error", …}`. The session is the conversation."""
    session: int | str = int(session_id) if session_id.isdigit() else session_id
    renderer = renderer_for(format) if format else TypedRenderer(session_id=session)
    body = await parse_body(request, TypedBody, svc.settings.max_body_bytes)
    chat = chat_request(svc, "typed", body.question, conversation_id=session_id, model=body.model)
    return await stream_run(svc, await start_chat(svc, chat, user), 0, renderer)


# -- seed 004: POST /api/v1/chat/stream ------------------------------------------------------


class DeltaBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str
    conversation_id: str | None = None
    metadata: dict[str, Any] | None = None


@router.post("/api/v1/chat/stream", response_class=EventStreamResponse)
async def delta_stream(request: Request, user: User, svc: Svc, format: Format = None) -> Response:
    """Seed 004: `{text, conversation_id, metadata}` → `event: snapshot`, then
    `data: {"delta", "done"}`. A bearer token is the API key when keys are configured and
    ignored otherwise (auth.py)."""
    renderer = renderer_for(format) if format else None
    body = await parse_body(request, DeltaBody, svc.settings.max_body_bytes)
    conversation_id = body.conversation_id or new_id("conv")
    chat = chat_request(svc, "delta", body.text, conversation_id=conversation_id)
    run_id = await start_chat(svc, chat, user)
    if renderer is None:
        snapshot = await _snapshot(svc, user, conversation_id)
        renderer = DeltaRenderer(snapshot={**snapshot, "run_id": run_id, "metadata": body.metadata})
    return await stream_run(svc, run_id, 0, renderer)


async def _snapshot(svc: Services, user: str, conversation_id: str) -> dict[str, Any]:
    """The conversation as `GET /v1/conversations/{id}` shows it."""
    found = await svc.store.get_conversation(user, conversation_id)
    if found is None:  # deleted in the instant since the turn was stored
        return {"id": conversation_id, "messages": []}
    conv, messages = found
    return ConversationWithMessages(
        **ConversationOut.model_validate(conv).model_dump(),
        messages=[MessageOut.model_validate(m) for m in messages],
    ).model_dump(mode="json")


# -- Vercel AI SDK: POST /api/chat, GET /api/chat/{id}/stream ---------------------------------


class UIPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class UIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    parts: list[UIPart] = Field(default_factory=list)
    content: str | None = None  # AI SDK 4's messages had text here instead of parts

    @property
    def text(self) -> str:
        parts = "".join(p.text or "" for p in self.parts if p.type == "text")
        return parts or self.content or ""


class AiSdkBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    messages: list[UIMessage] = Field(min_length=1)


HISTORY_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}


@router.post("/api/chat", response_class=EventStreamResponse)
async def ai_sdk_chat(request: Request, user: User, svc: Svc, format: Format = None) -> Response:
    """The AI SDK's `DefaultChatTransport`: `{id, messages: UIMessage[], trigger}` → the UI
    message stream v1. The chat id is the conversation; the messages before the last (a user
    message) are the history the model sees."""
    renderer = renderer_for(format) if format else AiSdkRenderer()
    body = await parse_body(request, AiSdkBody, svc.settings.max_body_bytes)
    *earlier, last = body.messages
    if last.role != "user":
        raise BadRequest(
            f"the last message must be the user's, not {last.role!r}", code="invalid_request"
        )
    history = [
        Message(HISTORY_ROLES[m.role], m.text)
        for m in earlier
        if m.role in HISTORY_ROLES and m.text
    ]
    chat = chat_request(svc, "ai-sdk", last.text, conversation_id=body.id)
    return await stream_run(svc, await start_chat(svc, chat, user, history=history), 0, renderer)


@router.get("/api/chat/{chat_id}/stream", response_class=EventStreamResponse)
async def ai_sdk_resume(chat_id: str, user: User, svc: Svc, format: Format = None) -> Response:
    """The AI SDK's `resume`: the chat's answer still being generated, replayed from its start;
    204 when there is none."""
    renderer = renderer_for(format) if format else AiSdkRenderer()
    found = await svc.store.get_conversation(user, chat_id)
    last = found[1][-1] if found and found[1] else None
    if last is None or last.role != "assistant" or last.status != "streaming" or not last.run_id:
        return Response(status_code=204)
    try:
        return await stream_run(svc, last.run_id, 0, renderer)
    except RunNotFound:  # its log has expired: nothing left to resume
        return Response(status_code=204)
