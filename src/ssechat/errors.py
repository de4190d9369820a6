"""The error tree. Each class says who sees it and how.

Before a stream's headers are sent an `ApiError` becomes a JSON body
`{"error": {"code", "message"}}` with its status; after, any `SsechatError` becomes an
`error` event with the same code. Messages are written for the API's user: no stack traces.
"""

from __future__ import annotations


class SsechatError(Exception):
    """Base of every error ssechat reports to a client."""

    code = "internal_error"
    status = 500
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ApiError(SsechatError):
    """A request refused before any stream starts."""


class BadRequest(ApiError):
    code = "bad_request"
    status = 400


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    status = 415


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status = 413


class NotFound(ApiError):
    code = "not_found"
    status = 404


class ModelError(SsechatError):
    """The model backend failed while generating; the stream ends with an `error` event."""

    code = "model_error"
    status = 502
    retryable = True


class PipelineError(SsechatError):
    """A pipeline raised or yielded something that is not an event."""

    code = "pipeline_error"
