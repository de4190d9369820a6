"""`GET /health`: is the server up, and which model does it serve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ssechat.api import services
from ssechat.services import Services

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(svc: Annotated[Services, Depends(services)]) -> dict[str, str]:
    return {"status": "ok", "model": svc.model.model, "backend": svc.model.backend}
