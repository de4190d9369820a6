"""`GET /health` (is the process up, which model), `GET /ready` (can it serve: are its
backends reachable) and `GET /metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from ssechat.api import services
from ssechat.metrics import CONTENT_TYPE
from ssechat.services import Services

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(svc: Annotated[Services, Depends(services)]) -> dict[str, str]:
    """The process is up; which model it serves and which backends it was configured with."""
    return {
        "status": "ok",
        "model": svc.model.model,
        "backend": svc.model.backend,
        "event_log": "redis" if svc.runs.shared else "memory",
        "store": svc.store.engine.dialect.name,
    }


@router.get("/ready")
async def ready(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    """For a load balancer: 200 while this replica can serve (its backends answer), else 503
    with what is wrong, and no new traffic should come here."""
    checks: dict[str, str] = {}
    shared = svc.runs.shared  # a log in memory is up while the process is
    for name, ping in (("event_log", shared.ping if shared else None), ("store", svc.store.ping)):
        try:
            if ping is not None:
                await asyncio.wait_for(ping(), timeout=2.0)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
    if not svc.runs.accepting:
        checks["runs"] = "draining"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", **checks}, 200 if ok else 503)


@router.get("/metrics", response_class=Response)
async def metrics(svc: Annotated[Services, Depends(services)]) -> Response:
    """Prometheus exposition: active runs and subscribers, time to first token, events sent,
    errors by code, run outcomes."""
    return Response(svc.runs.metrics.render(), media_type=CONTENT_TYPE)
