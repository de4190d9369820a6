"""`GET /v1/files/{name}`: download an exported file (a query's CSV).

Only its owner may, and only until it expires; another user's file, an expired one and a name
that never existed all answer the same 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from ssechat.api import services
from ssechat.auth import User
from ssechat.errors import NotFound
from ssechat.services import Services
from ssechat.sqlguard.export import MEDIA_TYPE, find_export

router = APIRouter(tags=["files"])


class FileNotFound(NotFound):
    code = "file_not_found"


@router.get(
    "/v1/files/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "No such file"}},
)
async def download_file(
    name: str, user: User, svc: Annotated[Services, Depends(services)]
) -> FileResponse:
    """The file as an attachment."""
    path = await find_export(svc.store, svc.settings.data_dir / "files", user, name)
    if path is None:
        raise FileNotFound(f"file {name} not found")
    return FileResponse(
        path,
        media_type=MEDIA_TYPE,
        filename=f"query-result-{name[:8]}.csv",
        content_disposition_type="attachment",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
