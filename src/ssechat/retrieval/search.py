"""Search a user's chunks: BM25 by the database's full-text index, optionally fused with
dense retrieval by reciprocal rank.

- SQLite (default): FTS5's own `bm25()` over `chunks_fts` (heading weighted 2, text 1), the
  question's content words OR-ed as quoted terms so punctuation never breaks the query.
- PostgreSQL: `ts_rank_cd` over the generated `tsv` column (not BM25, PostgreSQL has none
  built in; the closest ranking it ships), with the same OR-ed words.
- Dense (when an embedding model is configured): cosine similarity between the question's
  vector and the stored chunk vectors of the same model, in numpy.
- Fusion: reciprocal rank fusion, `score = Σ 1 / (k + rank)` over both rankings, k = 60
  (Cormack et al., 2009): no score calibration between the two needed.

Every hit also carries its `coverage`: the weighted share of the question's content terms
(see `terms.py`) found in the chunk's heading and text, where a term that none of the user's
documents contains counts twice. BM25 ranks; coverage decides whether the best-ranked chunks
are relevant at all (`min_coverage`), which is what lets the rag pipeline answer "nothing in
your documents" instead of quoting the least irrelevant passage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select, text

from ssechat.retrieval.embeddings import Embedder, from_bytes
from ssechat.retrieval.terms import STOPWORDS, stem, term_set, words
from ssechat.store.tables import Document, DocumentChunk

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ssechat.store import Store

RRF_K = 60

_SQLITE_BM25 = text(
    """
    SELECT chunks.pk, bm25(chunks_fts, 2.0, 1.0) AS rank
    FROM chunks_fts
    JOIN chunks ON chunks.pk = chunks_fts.rowid
    JOIN documents ON documents.id = chunks.document_id
    WHERE chunks_fts MATCH :query AND documents.user_id = :user
    ORDER BY rank
    LIMIT :limit
    """
)
_SQLITE_DF = text(
    """
    SELECT 1 FROM chunks_fts
    JOIN chunks ON chunks.pk = chunks_fts.rowid
    JOIN documents ON documents.id = chunks.document_id
    WHERE chunks_fts MATCH :query AND documents.user_id = :user
    LIMIT 1
    """
)
_POSTGRESQL_DF = text(
    """
    SELECT 1 FROM chunks JOIN documents ON documents.id = chunks.document_id
    WHERE chunks.tsv @@ to_tsquery('english', :query) AND documents.user_id = :user
    LIMIT 1
    """
)
_POSTGRESQL_RANK = text(
    """
    SELECT chunks.pk, ts_rank_cd(chunks.tsv, query) AS score
    FROM chunks
    JOIN documents ON documents.id = chunks.document_id,
         to_tsquery('english', :query) AS query
    WHERE chunks.tsv @@ query AND documents.user_id = :user
    ORDER BY score DESC, chunks.pk
    LIMIT :limit
    """
)


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: int
    document_id: str
    title: str  # the document's
    uri: str
    heading: str
    ordinal: int
    text: str
    score: float  # what ranked it: BM25 (higher is better), or the RRF score when fused
    coverage: float  # share of the question's content terms in heading + text
    bm25: float | None = None  # the full-text score, when full-text found it
    similarity: float | None = None  # the cosine, when dense retrieval ran


def query_words(question: str) -> list[str]:
    """The question's words that the full-text query uses: no stopwords, no repeats."""
    seen: dict[str, None] = {}
    for word in words(question):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word)
    return list(seen)


def coverage(weights: Mapping[str, float], passage: str) -> float:
    """The weighted share of the question's terms (`weights`: term → idf) in `passage`."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    present = term_set(passage)
    return sum(w for term, w in weights.items() if term in present) / total


async def search(
    store: Store,
    user: str,
    question: str,
    *,
    top_k: int = 5,
    embedder: Embedder | None = None,
    min_coverage: float = 0.0,
    min_similarity: float | None = None,
    candidates: int = 50,
) -> list[Hit]:
    """The user's `top_k` best chunks for `question`, best first, keeping only those that
    cover at least `min_coverage` of its terms or (dense) reach `min_similarity`."""
    async with store.read() as s:
        dialect = store.engine.dialect.name
        full_text = await _full_text(s, dialect, user, question, candidates)
        dense = await _dense(s, user, question, embedder, candidates) if embedder else []
        if embedder is None:
            ranked = [(pk, score) for pk, score in full_text]
        else:
            ranked = _fuse([pk for pk, _ in full_text], [pk for pk, _ in dense])
        rows = await _rows(s, [pk for pk, _ in ranked])
        weights = await _term_weights(s, dialect, user, question)
    bm25 = dict(full_text)
    similarity = dict(dense)
    hits: list[Hit] = []
    for pk, score in ranked:
        chunk, doc = rows[pk]
        hit = Hit(
            chunk_id=pk,
            document_id=doc.id,
            title=doc.title,
            uri=doc.uri,
            heading=chunk.heading,
            ordinal=chunk.ordinal,
            text=chunk.text,
            score=score,
            coverage=coverage(weights, f"{chunk.heading}\n{chunk.text}"),
            bm25=bm25.get(pk),
            similarity=similarity.get(pk) if embedder else None,
        )
        dense_ok = min_similarity is not None and (hit.similarity or -1.0) >= min_similarity
        if hit.coverage >= min_coverage or dense_ok:
            hits.append(hit)
        if len(hits) == top_k:
            break
    return hits


async def _full_text(
    s: AsyncSession, dialect: str, user: str, question: str, limit: int
) -> list[tuple[int, float]]:
    """(chunk pk, score) best first; scores are higher-is-better on both databases."""
    terms = [_fts_term(dialect, w) for w in query_words(question)]
    terms = [t for t in terms if t]
    if not terms:
        return []
    if dialect == "postgresql":
        params = {"query": " | ".join(terms), "user": user, "limit": limit}
        rows = await s.execute(_POSTGRESQL_RANK, params)
        return [(int(pk), float(score)) for pk, score in rows]
    params = {"query": " OR ".join(terms), "user": user, "limit": limit}
    rows = await s.execute(_SQLITE_BM25, params)
    # FTS5's bm25() is lower-is-better (negative); negated so every score reads the same way.
    return [(int(pk), -float(rank)) for pk, rank in rows]


def _fts_term(dialect: str, word: str) -> str:
    """One word as a full-text query term: quoted for FTS5, bare letters and digits for
    PostgreSQL's to_tsquery (whose operators must not leak in from a question)."""
    if dialect == "postgresql":
        return re.sub(r"[^0-9a-z]", "", word)
    return '"' + word.replace('"', '""') + '"'


async def _term_weights(
    s: AsyncSession, dialect: str, user: str, question: str
) -> dict[str, float]:
    """Each content term of the question → its weight in `coverage`: 1, or 2 for a term that
    none of the user's chunks contains. Such a term is the surest sign of a question the
    documents cannot answer ("What is the capital of Peru?" is not covered by a chunk that
    happens to say "capital"); a term the documents do use is only missing from this chunk,
    which paraphrase explains as often as irrelevance."""
    count_query = _POSTGRESQL_DF if dialect == "postgresql" else _SQLITE_DF
    weights: dict[str, float] = {}
    for word in query_words(question):
        term, fts = stem(word), _fts_term(dialect, word)
        if term in weights or not fts:
            continue
        found = await s.scalar(count_query, {"query": fts, "user": user})
        weights[term] = 1.0 if found else 2.0
    return weights


async def _dense(
    s: AsyncSession, user: str, question: str, embedder: Embedder, limit: int
) -> list[tuple[int, float]]:
    rows = (
        await s.execute(
            select(DocumentChunk.pk, DocumentChunk.embedding)
            .join(Document, Document.id == DocumentChunk.document_id)
            .where(
                Document.user_id == user,
                Document.embedding_model == embedder.name,
                DocumentChunk.embedding.is_not(None),
            )
        )
    ).all()
    if not rows:
        return []
    (query,) = await embedder.embed([question])
    matrix = np.stack([from_bytes(vector or b"") for _, vector in rows])
    similarities = matrix @ np.asarray(query, dtype=np.float32)
    best = np.argsort(-similarities, kind="stable")[:limit]
    return [(int(rows[i][0]), float(similarities[i])) for i in best]


def _fuse(*rankings: Sequence[int]) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pk in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


async def _rows(s: AsyncSession, pks: list[int]) -> dict[int, tuple[DocumentChunk, Document]]:
    if not pks:
        return {}
    result = await s.execute(
        select(DocumentChunk, Document)
        .join(Document, Document.id == DocumentChunk.document_id)
        .where(DocumentChunk.pk.in_(pks))
    )
    return {chunk.pk: (chunk, doc) for chunk, doc in result}
