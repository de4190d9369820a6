"""An existing FastAPI app that adopts ssechat: its own route, its own auth, its own pipeline.

    uvicorn examples.custom_pipeline:app          # from the repository root

    curl http://127.0.0.1:8000/hello
    curl -N http://127.0.0.1:8000/v1/chat/stream -H 'Authorization: Bearer example-token' \\
      -H 'content-type: application/json' -d '{"message": "hello world", "pipeline": "shout"}'
    curl -N http://127.0.0.1:8000/api/chat/stream -H 'Authorization: Bearer example-token' \\
      -H 'content-type: application/json' -d '{"message": "hello world"}'      # seed 001

`shout` gets everything ssechat's own pipelines get — a run that survives dropped
connections (resume with Last-Event-ID), the stop button, saved conversations, every wire
format — and this app's users come from this app's bearer token, not from ssechat's keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import ssechat
from ssechat import Context, Settings, register_pipeline, status
from ssechat.events import Event

app = FastAPI(title="An app with a chat")
bearer = HTTPBearer(auto_error=False)


async def require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """This app's own auth: the returned string is the user id ssechat stores answers under."""
    if credentials is None or credentials.credentials != "example-token":
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    return "example-user"


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@register_pipeline("shout")
async def shout(ctx: Context) -> AsyncGenerator[Event | str, None]:
    """Stream the question back in upper case, word by word."""
    yield status("shouting")
    for i, word in enumerate(ctx.question.split()):
        yield ("" if i == 0 else " ") + word.upper()
        await asyncio.sleep(0.05)  # a real agent would be waiting on its model or tools here


# Clients written for seed 001's RAG service (POST /api/chat/stream, `data: {"token": …}`) get
# this pipeline too, in their own wire format; every other route keeps its default pipeline.
ssechat.mount(app, settings=Settings(compat_pipelines={"keyed": "shout"}), user=require_token)
