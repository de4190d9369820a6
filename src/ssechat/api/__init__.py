"""HTTP routes, one router per resource, and the request plumbing they share."""

from __future__ import annotations

from typing import TypeVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ssechat.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ssechat.services import Services

M = TypeVar("M", bound=BaseModel)


async def services(request: Request) -> Services:
    """FastAPI dependency: the app's `Services`. A coroutine, though it never waits: FastAPI
    runs a plain function dependency on a worker thread, a round trip per request."""
    found: Services = request.app.state.ssechat
    return found


async def parse_body(request: Request, model: type[M], max_bytes: int) -> M:
    """Read a JSON body into `model`, refusing anything else with a precise 4xx."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(
            f"expected Content-Type application/json, got {content_type or 'none'}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body over {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives: no trust in Content-Length
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body over {max_bytes} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc), code="invalid_request") from exc


def validation_message(exc: ValidationError | RequestValidationError) -> str:
    """One readable line per problem, e.g. `message: Field required`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )
