"""OpenAI's Chat Completions API, for the official SDKs and everything built on them:
`POST /v1/chat/completions` (streaming or not) and `GET /v1/models`.

The request's `messages` are the conversation: the last one, a user message, is the question;
the ones before it reach the model as its history. Each request is stored as a conversation of
its own. Sampling fields (`max_tokens` or `max_completion_tokens`, `temperature`, `top_p`,
`seed`, `stop`) become the run's params; fields ssechat has no use for (`tools`,
`response_format`, penalties, `user`, …) are accepted and ignored; `n` above 1 is refused. Any
`model` is answered by the served model, and the response names the one that answered: a
client configured for another server's model names works unchanged.

Refusals use OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`, with the
status ssechat would give (the SDK picks its exception by status): a translation local to these
routes, so every other route keeps ssechat's own error shape.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from ssechat.api import parse_body, services, validation_message
from ssechat.api.chat import start_chat
from ssechat.api.compat import chat_request, failure_status
from ssechat.api.runs import renderer_for, stream_run
from ssechat.auth import User
from ssechat.dialects.openai import OpenAIRenderer, completion_body, error_object
from ssechat.errors import ApiError, BadRequest, NotFound
from ssechat.events import Error
from ssechat.models import Message, Role
from ssechat.runs import read_to_end
from ssechat.services import Services
from ssechat.transport import EventStreamResponse

Svc = Annotated[Services, Depends(services)]

ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None

    def params(self) -> dict[str, Any]:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        given = {
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": stop,
        }
        return {k: v for k, v in given.items() if v is not None}


def openai_error(exc: ApiError) -> JSONResponse:
    kind = "server_error" if exc.status >= 500 else "invalid_request_error"
    body = {"error": error_object(exc.message, code=exc.code, type=kind)}
    return JSONResponse(body, status_code=exc.status)


class OpenAIRoute(APIRoute):
    """Refusals in OpenAI's error shape, including those of dependencies (a missing API key:
    `current_user`, or the host app's override of it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return openai_error(exc)
            except RequestValidationError as exc:
                return openai_error(BadRequest(validation_message(exc), code="invalid_request"))

        return openai_errors


router = APIRouter(tags=["openai"], route_class=OpenAIRoute)


class ModelNotFound(NotFound):
    code = "model_not_found"


@router.post("/v1/chat/completions", response_class=EventStreamResponse)
async def chat_completions(
    request: Request,
    user: User,
    svc: Svc,
    format: Annotated[str | None, Query(description="Stream in another dialect.")] = None,
) -> Response:
    """A chat completion: `chat.completion.chunk`s and `[DONE]` with `stream: true`, else one
    `chat.completion`."""
    body = await parse_body(request, CompletionRequest, svc.settings.max_body_bytes)
    if body.n not in (None, 1):
        raise BadRequest("n: only one choice per request is supported", code="invalid_request")
    *earlier, last = body.messages
    if last.role != "user":
        raise BadRequest(
            f"messages: the last message must be the user's, not {last.role!r}",
            code="invalid_request",
        )
    history = [Message(ROLES[m.role], m.text) for m in earlier if m.role in ROLES and m.text]
    chat = chat_request(svc, "openai", last.text, model=body.model, params=body.params())
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        renderer = renderer_for(format) if format else OpenAIRenderer(include_usage=include_usage)
        run_id = await start_chat(svc, chat, user, history=history)
        return await stream_run(svc, run_id, 0, renderer)
    run_id = await start_chat(svc, chat, user, history=history)
    events = await read_to_end(svc.runs, run_id)
    headers = {"x-run-id": run_id}
    end = events[-1] if events else Error("internal_error", "the run left no events")
    if isinstance(end, Error):
        kind = "server_error" if failure_status(end) >= 500 else "invalid_request_error"
        error = error_object(end.message, code=end.code, type=kind)
        return JSONResponse({"error": error}, status_code=failure_status(end), headers=headers)
    return JSONResponse(completion_body(events), headers=headers)


def _model(svc: Services) -> dict[str, Any]:
    return {"id": svc.model.model, "object": "model", "created": 0, "owned_by": svc.model.backend}


@router.get("/v1/models")
async def list_models(user: User, svc: Svc) -> dict[str, Any]:
    """The models this server serves (one: the configured model)."""
    return {"object": "list", "data": [_model(svc)]}


@router.get("/v1/models/{model_id}")
async def retrieve_model(model_id: str, user: User, svc: Svc) -> dict[str, Any]:
    if model_id != svc.model.model:
        raise ModelNotFound(f"The model {model_id!r} does not exist")
    return _model(svc)
