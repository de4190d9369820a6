"""ssechat: stream LLM chat answers over Server-Sent Events.

The public API for building on ssechat (see docs/pipelines.md):

    from ssechat import Context, register_pipeline, mount, status, sources

Names are imported on first use, so `import ssechat.client` stays light: a client does not
load FastAPI, SQLAlchemy or llama.cpp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Context": "ssechat.pipelines",
    "Pipeline": "ssechat.pipelines",
    "register_pipeline": "ssechat.pipelines",
    "create_app": "ssechat.app",
    "create_router": "ssechat.app",
    "mount": "ssechat.app",
    "Settings": "ssechat.config",
    "Message": "ssechat.models",
    "status": "ssechat.events",
    "sources": "ssechat.events",
    "delta": "ssechat.events",
    "sql": "ssechat.events",
    "table": "ssechat.events",
    "csv": "ssechat.events",
    "followups": "ssechat.events",
    "metadata": "ssechat.events",
}
__all__ = [  # a literal, so linters and type checkers see the public names
    "Context",
    "Message",
    "Pipeline",
    "Settings",
    "create_app",
    "create_router",
    "csv",
    "delta",
    "followups",
    "metadata",
    "mount",
    "register_pipeline",
    "sources",
    "sql",
    "status",
    "table",
]

if TYPE_CHECKING:
    from ssechat.app import create_app, create_router, mount
    from ssechat.config import Settings
    from ssechat.events import csv, delta, followups, metadata, sources, sql, status, table
    from ssechat.models import Message
    from ssechat.pipelines import Context, Pipeline, register_pipeline


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ssechat' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
