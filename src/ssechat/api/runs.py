"""Runs as a resource: follow or resume a run's events, and cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query

from ssechat.api import Services, services
from ssechat.dialects import Renderer, dialect_names, get_dialect
from ssechat.errors import BadRequest
from ssechat.eventlog import RunNotFound
from ssechat.transport import EventStreamResponse

router = APIRouter(tags=["runs"])


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
) -> EventStreamResponse:
    """The SSE response following `run_id` after seq `after`; 404 JSON if there is no such run."""
    subscription = await svc.runs.subscribe(run_id, after, renderer)
    return EventStreamResponse(
        subscription,
        keepalive=svc.settings.keepalive_interval,
        retry_ms=svc.settings.retry_ms,
        headers=[(b"x-run-id", run_id.encode())],
    )


def _offset(value: str | None) -> int:
    if value is None or value.strip() == "":
        return 0
    if not value.strip().isdigit():
        raise BadRequest(
            f"Last-Event-ID must be a sequence number, got {value!r}", code="invalid_last_event_id"
        )
    return int(value)


@router.get("/v1/runs/{run_id}/events", response_class=EventStreamResponse)
async def run_events(
    run_id: str,
    svc: Annotated[Services, Depends(services)],
    last_event_id: Annotated[str | None, Header()] = None,
    last_event_id_query: Annotated[
        str | None, Query(alias="last_event_id", description="For clients that cannot set headers.")
    ] = None,
    format: str = "ssechat",
) -> EventStreamResponse:
    """Replay what came after `Last-Event-ID`, then follow the run live until it ends."""
    renderer = renderer_for(format)
    after = _offset(last_event_id if last_event_id is not None else last_event_id_query)
    return await stream_run(svc, run_id, after, renderer)


@router.post("/v1/runs/{run_id}/cancel")
async def cancel_run(run_id: str, svc: Annotated[Services, Depends(services)]) -> dict[str, str]:
    """Stop the run's generation; its subscribers get an `error` event with code `cancelled`."""
    if not svc.runs.cancel(run_id):
        raise RunNotFound(f"run {run_id} is not running")
    return {"run_id": run_id, "status": "cancelling"}
