"""`POST /v1/chat/stream`: start a run and stream it in the canonical (or `?format=`) dialect."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ssechat.api import Services, parse_body, services, validation_message
from ssechat.api.runs import renderer_for, stream_run
from ssechat.errors import BadRequest, PayloadTooLarge
from ssechat.pipelines import Context, get_pipeline, pipeline_names
from ssechat.runs import Run
from ssechat.transport import EventStreamResponse

router = APIRouter(tags=["chat"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="The user's question.")
    conversation_id: str | None = None
    pipeline: str = "chat"
    model: str | None = Field(default=None, description="A configured model; the default if unset.")
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters.")


async def start_chat(svc: Services, body: ChatRequest, user: str = "local") -> Run:
    """Validate what the body names and start its run; every refusal is a 4xx before any
    stream. Routes of every dialect share this."""
    settings = svc.settings
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
    ctx = Context(
        question=question,
        model=model,
        params=params,
        user=user,
        system_prompt=settings.system_prompts.get(body.pipeline, ""),
    )
    return await svc.runs.start(
        body.pipeline, pipeline, ctx, conversation_id=body.conversation_id or ""
    )


@router.post("/v1/chat/stream", response_class=EventStreamResponse)
async def chat_stream(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    format: Annotated[str, Query(description="Wire dialect of the stream.")] = "ssechat",
) -> EventStreamResponse:
    """Start a run and stream its events; `X-Run-Id` names the run for resume and cancel."""
    renderer = renderer_for(format)
    body = await parse_body(request, ChatRequest, svc.settings.max_body_bytes)
    run = await start_chat(svc, body)
    return await stream_run(svc, run.id, 0, renderer)
