"""`POST /v1/chat/stream`: start a run and stream it in the canonical (or `?format=`) dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ssechat.api import parse_body, services, validation_message
from ssechat.api.runs import renderer_for, stream_run
from ssechat.auth import User
from ssechat.errors import ApiError, BadRequest, PayloadTooLarge
from ssechat.eventlog import RunNotFound
from ssechat.ids import new_id
from ssechat.models import Message, Role
from ssechat.pipelines import Context, get_pipeline, pipeline_names
from ssechat.services import Services
from ssechat.transport import EventStreamResponse

router = APIRouter(tags=["chat"])


class ShuttingDown(ApiError):
    code = "shutting_down"
    status = 503
    retryable = True


class AlreadyAnswered(ApiError):
    code = "duplicate_message"
    status = 409


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="The user's question.")
    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Continue this conversation (created if new); a new one if unset.",
    )
    client_message_id: str | None = Field(
        default=None,
        max_length=200,
        description="Idempotency key: resubmitting it in the same conversation returns the "
        "existing run instead of starting another.",
    )
    pipeline: str = Field(default="chat", max_length=100)
    model: str | None = Field(default=None, description="A configured model; the default if unset.")
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters.")


async def start_chat(
    svc: Services, body: ChatRequest, user: str, *, history: Sequence[Message] | None = None
) -> str:
    """Validate what the body names, store the turn and start its run; return the run id.

    `history`, when given, is what the model sees before the question instead of the stored
    conversation (clients that send the whole exchange every time: OpenAI, the AI SDK).
    Every refusal is a 4xx before any stream. Routes of every dialect share this."""
    settings = svc.settings
    if not svc.runs.accepting:
        raise ShuttingDown("the server is shutting down; ask again in a moment")
    question = body.message.strip()
    if not question:
        raise BadRequest("message is empty", code="empty_message")
    if len(question) > settings.max_message_chars:
        raise PayloadTooLarge(
            f"message is {len(question)} characters; the limit is {settings.max_message_chars}",
            code="message_too_long",
        )
    try:
        pipeline = get_pipeline(body.pipeline)
    except KeyError:
        raise BadRequest(
            f"unknown pipeline {body.pipeline!r}; available: {', '.join(pipeline_names())}",
            code="unknown_pipeline",
        ) from None
    model = svc.model
    if body.model not in (None, model.model):
        raise BadRequest(
            f"unknown model {body.model!r}; available: {model.model}", code="unknown_model"
        )
    try:
        params = model.params_type.model_validate(body.params)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc), code="invalid_params") from exc
    turn = await svc.store.begin_turn(
        user,
        body.conversation_id,
        question,
        run_id=new_id("run"),
        answer_id=new_id("msg"),
        pipeline=body.pipeline,
        model=model.model,
        client_message_id=body.client_message_id,
        history_chars=settings.history_chars,
    )
    if turn.repeated:
        return turn.run_id
    ctx = Context(
        question=question,
        model=model,
        params=params,
        history=tuple(history)
        if history is not None
        else tuple(Message(cast(Role, m.role), m.content) for m in turn.history),
        user=user,
        system_prompt=settings.system_prompts.get(body.pipeline, ""),
        services=svc,
    )
    run = await svc.runs.start(
        body.pipeline,
        pipeline,
        ctx,
        run_id=turn.run_id,
        conversation_id=turn.conversation_id,
        message_id=turn.answer_id,
    )
    return run.id


@router.post("/v1/chat/stream", response_class=EventStreamResponse)
async def chat_stream(
    request: Request,
    user: User,
    svc: Annotated[Services, Depends(services)],
    format: Annotated[str, Query(description="Wire dialect of the stream.")] = "ssechat",
) -> Response:
    """Start a run and stream its events; `X-Run-Id` names the run for resume and cancel."""
    renderer = renderer_for(format)
    body = await parse_body(request, ChatRequest, svc.settings.max_body_bytes)
    run_id = await start_chat(svc, body, user)
    try:
        return await stream_run(svc, run_id, 0, renderer)
    except RunNotFound:  # only a resubmitted message's run can be gone already
        raise AlreadyAnswered(
            f"client_message_id {body.client_message_id!r} was answered by run {run_id}, "
            "which is no longer replayable; read the conversation instead"
        ) from None
