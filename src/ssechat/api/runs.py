"""Runs as a resource: follow or resume a run's events, and cancel it.

Another user's run answers exactly as a run that does not exist: 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from ssechat.api import services
from ssechat.auth import User
from ssechat.dialects import Renderer, dialect_names, get_dialect, wire_of
from ssechat.errors import ApiError, BadRequest
from ssechat.eventlog import RunNotFound
from ssechat.services import Services
from ssechat.transport import EventStreamResponse

router = APIRouter(tags=["runs"])


class RunFinished(ApiError):
    code = "run_finished"
    status = 409


def renderer_for(format: str) -> Renderer:
    try:
        return get_dialect(format)()
    except KeyError:
        raise BadRequest(
            f"unknown format {format!r}; available: {', '.join(dialect_names())}",
            code="unknown_format",
        ) from None


async def stream_run(
    svc: Services, run_id: str, after: int, renderer: Renderer
) -> EventStreamResponse | Response:
    """The SSE response following `run_id` after seq `after`; 404 JSON if there is no such run.

    A client that has already seen the whole of an ended run gets 204 No Content: the one
    answer that makes an EventSource stop reconnecting."""
    subscription = await svc.runs.subscribe(run_id, after, renderer)
    if subscription.exhausted:
        subscription.close()
        return Response(status_code=204)
    wire = wire_of(renderer)  # what the format asks of the response besides its events
    return EventStreamResponse(
        subscription,
        keepalive=svc.settings.keepalive_interval,
        write_interval=svc.settings.write_interval,
        retry_ms=svc.settings.retry_ms if wire.retry else None,
        headers=[(b"x-run-id", run_id.encode())]
        + [(k.encode(), v.encode()) for k, v in wire.headers],
    )


async def check_owner(svc: Services, run_id: str, user: str) -> None:
    owner = svc.runs.owner(run_id)
    if owner is None:
        owner = await svc.store.run_owner(run_id)
    if owner != user:
        raise RunNotFound(f"run {run_id} not found")


def _offset(value: str | None) -> int:
    if value is None or value.strip() == "":
        return 0
    if not value.strip().isdigit():
        raise BadRequest(
            f"Last-Event-ID must be a sequence number, got {value!r}",
            code="invalid_last_event_id",
        )
    return int(value)


# Read by hand and documented here, not declared as FastAPI parameters: FastAPI resolves
# each declared parameter anew on every request, and the three cost a resume about a tenth
# of its time (docs/benchmarks.md, "What changed ssechat's figures").
_EVENTS_PARAMETERS = {
    "parameters": [
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "The seq of the last event the client has: the replay starts after it.",
        },
        {
            "name": "last_event_id",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "`Last-Event-ID`, for clients that cannot set headers.",
        },
        {
            "name": "format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "default": "ssechat"},
            "description": "Wire dialect of the stream.",
        },
    ]
}


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=EventStreamResponse,
    openapi_extra=_EVENTS_PARAMETERS,
)
async def run_events(
    run_id: str, request: Request, user: User, svc: Annotated[Services, Depends(services)]
) -> Response:
    """Replay what came after `Last-Event-ID`, then follow the run live until it ends."""
    query = request.query_params
    renderer = renderer_for(query.get("format", "ssechat"))
    header = request.headers.get("last-event-id")
    after = _offset(header if header is not None else query.get("last_event_id"))
    await check_owner(svc, run_id, user)
    return await stream_run(svc, run_id, after, renderer)


@router.post("/v1/runs/{run_id}/cancel")
async def cancel_run(
    run_id: str, user: User, svc: Annotated[Services, Depends(services)]
) -> dict[str, str]:
    """Stop the run's generation; its subscribers get an `error` event with code `cancelled`,
    and what it generated is saved with status `cancelled`."""
    await check_owner(svc, run_id, user)
    if not await svc.runs.request_cancel(run_id):
        raise RunFinished(f"run {run_id} has already ended")
    return {"run_id": run_id, "status": "cancelling"}
