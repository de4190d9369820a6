"""Retrieval quality on a labelled set: questions over the project's own README.md and docs,
each with phrases identifying the chunk that answers it (tests/data/rag_questions.json).

BM25 recall@5 (the answering chunk among the first five) is printed and held at 0.9 or more;
so is recall after the relevance gate the rag pipeline applies, which must also turn away
the questions the documents cannot answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ssechat.config import Settings
from ssechat.retrieval.documents import Ingested, ingest_files
from ssechat.retrieval.search import Hit, search
from ssechat.store import Store, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
LABELLED: dict[str, Any] = json.loads((ROOT / "tests/data/rag_questions.json").read_text())
SETTINGS = Settings()


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def answers(hit: Hit, expect: list[str]) -> bool:
    return any(normal(phrase) in normal(hit.text) for phrase in expect)


@pytest.fixture
async def corpus(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(sqlite_url(tmp_path))
    paths = [ROOT / p for p in LABELLED["documents"]]
    async for path, outcome in ingest_files(store, "local", paths, SETTINGS):
        assert isinstance(outcome, Ingested), f"{path}: {outcome}"
    yield store
    await store.close()


def test_the_labelled_set_is_large_enough_and_its_phrases_still_exist() -> None:
    assert len(LABELLED["answerable"]) >= 20
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = normal("\n".join(f.read_text() for f in files))
    missing = [
        item["question"]
        for item in LABELLED["answerable"]
        if not any(normal(p) in text for p in item["expect"])
    ]
    assert missing == [], "the docs changed: update tests/data/rag_questions.json"


async def test_bm25_recall_at_5_is_at_least_0_9(
    corpus: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    items = LABELLED["answerable"]
    missed = []
    for item in items:
        hits = await search(corpus, "local", item["question"], top_k=5)
        if not any(answers(h, item["expect"]) for h in hits):
            missed.append(item["question"])
    recall = 1 - len(missed) / len(items)
    with capsys.disabled():
        print(f"\nBM25 recall@5 over {len(items)} labelled questions: {recall:.3f}")
    assert recall >= 0.9, f"missed: {missed}"


async def test_the_relevance_gate_keeps_answers_and_turns_away_unanswerable_questions(
    corpus: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    items = LABELLED["answerable"]
    gate = SETTINGS.rag_min_coverage
    kept = 0
    for item in items:
        hits = await search(corpus, "local", item["question"], top_k=5, min_coverage=gate)
        kept += any(answers(h, item["expect"]) for h in hits)
    turned_away = [
        q
        for q in LABELLED["unanswerable"]
        if not await search(corpus, "local", q, min_coverage=gate)
    ]
    with capsys.disabled():
        print(
            f"\nrecall@5 after the relevance gate: {kept / len(items):.3f}; "
            f"unanswerable turned away: {len(turned_away)}/{len(LABELLED['unanswerable'])}"
        )
    assert kept / len(items) >= 0.9
    assert len(turned_away) >= len(LABELLED["unanswerable"]) - 1
