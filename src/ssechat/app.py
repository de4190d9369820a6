"""`create_app(settings)`: wiring only — resources in the lifespan, routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ssechat import __version__
from ssechat.api import (
    chat,
    compat,
    conversations,
    documents,
    files,
    health,
    openai,
    runs,
    validation_message,
)
from ssechat.config import Settings
from ssechat.errors import ApiError
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.models import create_backend
from ssechat.runs import RunManager
from ssechat.services import Services
from ssechat.store import Store, sqlite_url

logger = logging.getLogger("ssechat")


def error_body(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await Store.open(settings.database_url or sqlite_url(settings.data_dir))
        try:
            if interrupted := await store.interrupt_streaming():
                logger.warning(
                    "%d answers cut off by an earlier crash: now interrupted", interrupted
                )
            model = create_backend(settings)
        except BaseException:
            await store.close()
            raise
        log = MemoryEventLog(retention=settings.event_retention)
        run_manager = RunManager(
            log, store, grace_period=settings.grace_period, save_interval=settings.save_interval
        )
        app.state.ssechat = services = Services(settings, model, run_manager, store)
        logger.info("serving model %s (%s)", model.model, model.backend)
        try:
            yield
        finally:
            await run_manager.drain(settings.drain_timeout)
            await services.aclose_resources()
            await log.aclose()
            await model.aclose()
            await store.close()

    app = FastAPI(title="ssechat", version=__version__, lifespan=lifespan)
    for module in (chat, runs, conversations, documents, files, compat, openai, health):
        app.include_router(module.router)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_body(exc.code, exc.message, exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_body("invalid_request", validation_message(exc), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_body(code, str(exc.detail), exc.status_code)

    return app
