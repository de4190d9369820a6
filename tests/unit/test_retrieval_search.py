"""Documents and search on a real database (SQLite FTS5; PostgreSQL full-text when installed):
ingest, replace, delete, per-user isolation, BM25 ranking, the relevance gate, dense + RRF."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from ssechat.config import Settings
from ssechat.retrieval.documents import (
    Ingested,
    count_chunks,
    delete_document,
    get_document,
    ingest,
    ingest_files,
    list_documents,
)
from ssechat.retrieval.embeddings import normalise
from ssechat.retrieval.loaders import EmptyDocument, UnsupportedDocumentType
from ssechat.retrieval.search import RRF_K, _fuse, search
from ssechat.store import Store

SETTINGS = Settings(chunk_size=300, chunk_overlap=0)
RUNS = b"""# Runs

## Resume

A client that lost its connection resumes the run with Last-Event-ID and misses nothing.

## Grace

A run whose last client went away keeps generating for a grace period of thirty seconds.
"""
KEYS = b"""# Keys

Create an API key with the keys command; only its hash is stored in the database.
"""


async def test_ingested_chunks_are_found_by_their_words_best_first(store: Store) -> None:
    await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    await ingest(store, "alice", "keys.md", KEYS, SETTINGS)
    hits = await search(store, "alice", "How do I resume a lost connection?")
    assert hits[0].heading == "Runs › Resume"
    assert hits[0].title == "Runs"
    assert hits[0].uri == "runs.md"
    assert hits[0].bm25 is not None
    assert hits[0].score == hits[0].bm25 > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    keys = await search(store, "alice", "Where is the API key hash stored?")
    assert keys[0].heading == "Keys"


async def test_another_users_documents_are_never_searched_listed_or_deleted(store: Store) -> None:
    ingested = await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    assert await search(store, "bob", "resume the run") == []
    assert await list_documents(store, "bob") == []
    assert await get_document(store, "bob", ingested.document.id) is None
    assert not await delete_document(store, "bob", ingested.document.id)
    assert await search(store, "alice", "resume the run")


async def test_reingesting_a_changed_file_replaces_its_chunks(store: Store) -> None:
    first = await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    changed = RUNS.replace(b"thirty seconds", b"a configurable number of heartbeats")
    second = await ingest(store, "alice", "runs.md", changed, SETTINGS)
    assert (first.status, second.status) == ("created", "replaced")
    assert second.document.id == first.document.id
    assert second.document.sha256 == hashlib.sha256(changed).hexdigest()
    assert await count_chunks(store, "alice") == 2
    assert await search(store, "alice", "thirty seconds", min_coverage=0.5) == []
    (hit,) = await search(store, "alice", "heartbeats", min_coverage=0.5)
    assert "configurable number of heartbeats" in hit.text


async def test_reingesting_an_unchanged_file_leaves_it_alone(store: Store) -> None:
    first = await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    again = await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    assert again.status == "unchanged"
    assert again.document.updated_at == first.document.updated_at
    assert await count_chunks(store, "alice") == 2


async def test_a_deleted_document_is_no_longer_found(store: Store) -> None:
    runs = await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    await ingest(store, "alice", "keys.md", KEYS, SETTINGS)
    assert await delete_document(store, "alice", runs.document.id)
    assert await search(store, "alice", "resume the run", min_coverage=0.5) == []
    assert [d.uri for d in await list_documents(store, "alice")] == ["keys.md"]
    assert await count_chunks(store, "alice") == 1


async def test_a_refused_file_stores_nothing(store: Store) -> None:
    with pytest.raises(UnsupportedDocumentType):
        await ingest(store, "alice", "photo.png", b"\x89PNG", SETTINGS)
    with pytest.raises(EmptyDocument):
        await ingest(store, "alice", "empty.md", b"", SETTINGS)
    assert await list_documents(store, "alice") == []


@pytest.mark.parametrize(
    "question",
    ['"unbalanced', "NEAR(resume run)", "resume* OR -run AND (", "run:resume", "^resume", "'"],
)
async def test_full_text_syntax_in_a_question_is_just_words(store: Store, question: str) -> None:
    await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    hits = await search(store, "alice", question)
    assert all(h.uri == "runs.md" for h in hits)


async def test_a_question_of_only_stopwords_finds_nothing(store: Store) -> None:
    await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    assert await search(store, "alice", "What is it and how do I do it?") == []


async def test_the_relevance_gate_drops_chunks_that_cover_too_little_of_the_question(
    store: Store,
) -> None:
    await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    # "run" is everywhere in the documents, "Peru" nowhere: it weighs double.
    loose = await search(store, "alice", "Peru run")
    assert loose
    assert all(h.coverage == pytest.approx(1 / 3) for h in loose)
    assert await search(store, "alice", "Peru run", min_coverage=0.5) == []
    (hit,) = await search(store, "alice", "resume lost connection", min_coverage=0.5)
    assert hit.coverage == 1.0


def test_reciprocal_rank_fusion_rewards_agreement_between_rankings() -> None:
    fused = dict(_fuse([1, 2, 3], [3, 4]))
    assert fused[3] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused[1] == pytest.approx(1 / (RRF_K + 1))
    assert max(fused, key=lambda pk: fused[pk]) == 3


class SynonymEmbedder:
    """A deterministic embedding model for the dense path: bag of words over a tiny
    vocabulary in which synonyms share a dimension (what BM25 cannot know)."""

    name = "test:synonyms"
    VOCABULARY: ClassVar[dict[str, int]] = {
        "resume": 0, "resumes": 0, "reconnect": 0, "reconnects": 0,
        "grace": 1, "period": 1, "patience": 1, "key": 2, "credential": 2,
    }  # fmt: skip

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for t in texts:
            vector = [0.0] * 4
            for word in t.lower().replace(".", " ").replace("?", " ").split():
                vector[self.VOCABULARY.get(word, 3)] += 1.0 if word in self.VOCABULARY else 0.01
            vectors.append(normalise(vector))
        return vectors

    async def aclose(self) -> None:
        return None


async def test_dense_retrieval_finds_what_words_miss_and_fuses_with_bm25(store: Store) -> None:
    embedder = SynonymEmbedder()
    await ingest(store, "alice", "runs.md", RUNS, SETTINGS, embedder=embedder)
    await ingest(store, "alice", "keys.md", KEYS, SETTINGS, embedder=embedder)
    question = "How do I reconnect?"  # no word of it is in the documents
    assert await search(store, "alice", question, min_coverage=0.5) == []
    hits = await search(
        store, "alice", question, embedder=embedder, min_coverage=0.5, min_similarity=0.5
    )
    assert hits[0].heading == "Runs › Resume"
    assert hits[0].similarity == pytest.approx(1.0, abs=0.01)
    assert hits[0].score == pytest.approx(1 / (RRF_K + 1))  # dense rank 1, BM25: none


async def test_documents_embedded_by_another_model_are_embedded_again(store: Store) -> None:
    first = await ingest(store, "alice", "runs.md", RUNS, SETTINGS)
    assert first.document.embedding_model is None
    again = await ingest(store, "alice", "runs.md", RUNS, SETTINGS, embedder=SynonymEmbedder())
    assert (again.status, again.document.embedding_model) == ("replaced", "test:synonyms")


async def test_ingesting_folders_takes_supported_files_and_reports_refusals(
    store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "runs.md").write_bytes(RUNS)
    (folder / "sub" / "keys.txt").write_bytes(KEYS)
    (folder / "image.png").write_bytes(b"\x89PNG")  # skipped inside a folder
    (folder / ".hidden" / "secret.md").write_bytes(b"# Secret")
    (tmp_path / "empty.md").write_bytes(b"")
    outcomes = [
        (path.name, done.status if isinstance(done, Ingested) else type(done).__name__)
        async for path, done in ingest_files(
            store, "alice", [folder, tmp_path / "empty.md", tmp_path / "missing.md"], SETTINGS
        )
    ]
    assert outcomes == [
        ("runs.md", "created"),
        ("keys.txt", "created"),
        ("empty.md", "EmptyDocument"),
        ("missing.md", "FileNotFoundError"),
    ]
    uris = sorted(d.uri for d in await list_documents(store, "alice"))
    assert uris == sorted(str(p.resolve()) for p in (folder / "runs.md", folder / "sub/keys.txt"))


def test_a_vector_is_normalised_to_unit_length() -> None:
    assert math.hypot(*normalise([3.0, 4.0])) == pytest.approx(1.0)
    assert normalise([0.0, 0.0]) == [0.0, 0.0]
