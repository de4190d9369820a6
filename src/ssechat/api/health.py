"""`GET /health` (is the process up, which model) and `GET /metrics` (Prometheus)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from ssechat.api import services
from ssechat.metrics import CONTENT_TYPE
from ssechat.services import Services

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(svc: Annotated[Services, Depends(services)]) -> dict[str, str]:
    return {"status": "ok", "model": svc.model.model, "backend": svc.model.backend}


@router.get("/metrics", response_class=Response)
async def metrics(svc: Annotated[Services, Depends(services)]) -> Response:
    """Prometheus exposition: active runs and subscribers, time to first token, events sent,
    errors by code, run outcomes."""
    return Response(svc.runs.metrics.render(), media_type=CONTENT_TYPE)
