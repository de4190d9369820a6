"""`GET /v1/pipelines`: the pipelines this server answers with (built-ins, plugins and
`--pipeline`), for clients that let the user pick one, such as the chat page."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ssechat.auth import User
from ssechat.pipelines import pipeline_names

router = APIRouter(tags=["pipelines"])


class PipelineList(BaseModel):
    data: list[str]


@router.get("/v1/pipelines")
async def list_pipelines(user: User) -> PipelineList:
    """Every registered pipeline name, sorted; pass one as `pipeline` in a chat request."""
    return PipelineList(data=pipeline_names())
