"""Documents per user: upload (multipart), list, read, delete — what the `rag` pipeline
retrieves from.

An upload is refused with a 4xx JSON error, storing nothing, when it is not multipart (415),
has no `file` (400), names an unsupported type (415 `unsupported_document_type`), is empty
(400 `empty_document`), is over `max_upload_bytes` (413 `document_too_large`, counted as
the body arrives, never trusting Content-Length alone) or cannot be read (422
`unreadable_document`: a malformed PDF, text that is not UTF-8). Another user's document
answers exactly as one that does not exist: 404.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ssechat.api import services
from ssechat.auth import User
from ssechat.errors import BadRequest, NotFound, UnsupportedMediaType
from ssechat.retrieval.documents import delete_document, get_document, ingest, list_documents
from ssechat.retrieval.embeddings import embedder_for
from ssechat.retrieval.loaders import DocumentTooLarge
from ssechat.services import Services
from ssechat.store.tables import Document

router = APIRouter(prefix="/v1/documents", tags=["documents"])
Svc = Annotated[Services, Depends(services)]

# Room for the multipart envelope (boundaries, part headers, a title field) around the file.
_ENVELOPE_BYTES = 64 * 1024


class DocumentNotFound(NotFound):
    code = "document_not_found"


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    uri: str
    mime: str
    bytes: int
    sha256: str
    chunk_count: int
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime


class UploadOut(DocumentOut):
    status: str  # created | replaced | unchanged


class DocumentList(BaseModel):
    data: list[DocumentOut]


# The body is parsed by hand (to count it as it arrives), so OpenAPI is told its shape.
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post("", status_code=201, response_model=UploadOut, openapi_extra=_UPLOAD_BODY)
async def upload_document(request: Request, response: Response, user: User, svc: Svc) -> UploadOut:
    """Upload one file as the multipart field `file` (.txt, .md, .html, .pdf). The same file
    name again replaces the document if its content changed (200, `status: replaced`)."""
    limit = svc.settings.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise UnsupportedMediaType(
            f"expected multipart/form-data with a `file` field, got {content_type or 'none'}"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _ENVELOPE_BYTES:
        raise DocumentTooLarge(f"the upload is {declared} bytes; the limit is {limit}")
    parser = MultiPartParser(
        request.headers, _limited(request.stream(), limit), max_files=1, max_fields=10
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        message = f"malformed multipart body: {exc.message}"
        raise BadRequest(message, code="invalid_request") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("missing the multipart file field `file`", code="invalid_request")
        filename = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not filename:
            raise BadRequest("the `file` field has no file name", code="invalid_request")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise DocumentTooLarge(f"{filename}: over the limit of {limit} bytes")
        result = await ingest(
            svc.store,
            user,
            filename,
            data,
            svc.settings,
            content_type=upload.content_type,
            embedder=embedder_for(svc),
        )
    finally:
        await form.close()
    response.status_code = 201 if result.status == "created" else 200
    return UploadOut(**_out(result.document).model_dump(), status=result.status)


@router.get("")
async def list_user_documents(user: User, svc: Svc) -> DocumentList:
    """The caller's documents, most recently ingested first."""
    return DocumentList(data=[_out(d) for d in await list_documents(svc.store, user)])


@router.get("/{document_id}")
async def read_document(document_id: str, user: User, svc: Svc) -> DocumentOut:
    doc = await get_document(svc.store, user, document_id)
    if doc is None:
        raise DocumentNotFound(f"document {document_id} not found")
    return _out(doc)


@router.delete("/{document_id}", status_code=204)
async def remove_document(document_id: str, user: User, svc: Svc) -> Response:
    """Delete the document and its chunks: it is no longer retrieved."""
    if not await delete_document(svc.store, user, document_id):
        raise DocumentNotFound(f"document {document_id} not found")
    return Response(status_code=204)


def _out(doc: Document) -> DocumentOut:
    return DocumentOut.model_validate(doc)


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """The body, refused as soon as it outgrows a file of `limit` bytes and its envelope."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit + _ENVELOPE_BYTES:
            raise DocumentTooLarge(f"the upload is over the limit of {limit} bytes")
        yield chunk
