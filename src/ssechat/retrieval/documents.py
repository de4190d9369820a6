"""Documents per user: ingest (load → chunk → embed → store), list, get, delete.

Everything that can refuse a file — its type, its size, its content — runs before the single
transaction that stores it, so a refused file stores nothing. A document's identity is its
`uri` within its user: ingesting the same uri again with different bytes replaces the
document's chunks (the full-text index follows through the triggers of migration 0002); with
the same bytes it is left alone, unless it now needs embeddings it lacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ssechat.errors import ApiError
from ssechat.ids import new_id
from ssechat.retrieval.chunking import chunk
from ssechat.retrieval.embeddings import Embedder, to_bytes
from ssechat.retrieval.loaders import MIME_TYPES, EmptyDocument, load, mime_for
from ssechat.store.tables import Document, DocumentChunk, utcnow

if TYPE_CHECKING:
    from ssechat.config import Settings
    from ssechat.store import Store


@dataclass(frozen=True, slots=True)
class Ingested:
    document: Document
    status: Literal["created", "replaced", "unchanged"]


async def ingest(
    store: Store,
    user: str,
    filename: str,
    data: bytes,
    settings: Settings,
    *,
    uri: str | None = None,
    content_type: str | None = None,
    embedder: Embedder | None = None,
) -> Ingested:
    """Store `data` as the user's document `uri` (default: `filename`); an `ApiError`
    subclass, with nothing stored, for a file that cannot be used."""
    uri = uri or filename
    mime = mime_for(filename, content_type)
    max_bytes = settings.max_upload_bytes
    loaded = await asyncio.to_thread(load, filename, data, mime=mime, max_bytes=max_bytes)
    # An overlap as large as a chunk would never advance: capped at half a chunk.
    overlap = min(settings.chunk_overlap, settings.chunk_size // 2)
    chunks = chunk(loaded.text, size=settings.chunk_size, overlap=overlap)
    if not chunks:
        raise EmptyDocument(f"{filename}: no text in it")
    sha256 = hashlib.sha256(data).hexdigest()
    existing = await _by_uri(store, user, uri)
    if (
        existing is not None
        and existing.sha256 == sha256
        and (embedder is None or existing.embedding_model == embedder.name)
    ):
        return Ingested(existing, "unchanged")
    vectors: list[bytes | None] = [None] * len(chunks)
    if embedder is not None:  # before the transaction: a failing model stores nothing
        embedded = await embedder.embed([f"{c.heading}\n{c.text}".strip() for c in chunks])
        vectors = [to_bytes(v) for v in embedded]
    for attempt in range(2):  # a concurrent ingest of the same new uri may win the insert
        try:
            async with store.begin() as s:
                await s.run_sync(store.ensure_user, user)
                doc = await s.scalar(
                    select(Document).where(Document.user_id == user, Document.uri == uri)
                )
                status: Literal["created", "replaced"] = "replaced"
                if doc is None:
                    doc = Document(id=new_id("doc"), user_id=user, uri=uri)
                    s.add(doc)
                    status = "created"
                else:
                    stale = delete(DocumentChunk).where(DocumentChunk.document_id == doc.id)
                    await s.execute(stale)
                doc.title = loaded.title[:500]
                doc.sha256, doc.mime, doc.bytes = sha256, loaded.mime, len(data)
                doc.chunk_count = len(chunks)
                doc.embedding_model = embedder.name if embedder is not None else None
                doc.updated_at = utcnow()
                await s.flush()
                s.add_all(
                    DocumentChunk(
                        document_id=doc.id,
                        ordinal=c.ordinal,
                        heading=c.heading,
                        text=c.text,
                        embedding=vector,
                    )
                    for c, vector in zip(chunks, vectors, strict=True)
                )
            return Ingested(doc, status)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def list_documents(store: Store, user: str, *, limit: int = 1000) -> Sequence[Document]:
    """The user's documents, most recently ingested first."""
    async with store.read() as s:
        query = (
            select(Document)
            .where(Document.user_id == user)
            .order_by(Document.updated_at.desc(), Document.id)
            .limit(limit)
        )
        return (await s.scalars(query)).all()


async def get_document(store: Store, user: str, document_id: str) -> Document | None:
    async with store.read() as s:
        found: Document | None = await s.scalar(
            select(Document).where(Document.user_id == user, Document.id == document_id)
        )
        return found


async def delete_document(store: Store, user: str, document_id: str) -> bool:
    """Delete a document of the user's with its chunks; False if there is none."""
    async with store.begin() as s:
        doc = await s.scalar(
            select(Document).where(Document.user_id == user, Document.id == document_id)
        )
        if doc is None:
            return False
        # Explicitly, not by cascade: the full-text triggers must see each chunk go.
        await s.execute(delete(DocumentChunk).where(DocumentChunk.document_id == doc.id))
        await s.delete(doc)
        return True


async def count_chunks(store: Store, user: str) -> int:
    async with store.read() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(DocumentChunk)
            .join(Document, Document.id == DocumentChunk.document_id)
            .where(Document.user_id == user)
        )
        return int(count or 0)


# -- files and folders (the `ingest` command) -----------------------------------------------


def files_under(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path that is a file, and the supported files inside each folder (recursively,
    sorted, hidden files and folders skipped)."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith(".") and Path(name).suffix.lower() in MIME_TYPES:
                    yield Path(root) / name


async def ingest_files(
    store: Store,
    user: str,
    paths: Iterable[Path],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
) -> AsyncIterator[tuple[Path, Ingested | ApiError | OSError]]:
    """Ingest every file `files_under(paths)` finds; each yields its outcome (a refusal or
    an unreadable path is reported, and the next file goes on)."""
    for path in files_under(paths):
        try:
            data = await asyncio.to_thread(path.read_bytes)
            outcome: Ingested | ApiError | OSError = await ingest(
                store, user, path.name, data, settings, uri=str(path.resolve()), embedder=embedder
            )
        except (ApiError, OSError) as exc:
            outcome = exc
        yield path, outcome


async def _by_uri(store: Store, user: str, uri: str) -> Document | None:
    async with store.read() as s:
        found: Document | None = await s.scalar(
            select(Document).where(Document.user_id == user, Document.uri == uri)
        )
        return found
