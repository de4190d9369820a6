"""Documents and the `rag` pipeline against real servers: uploads over HTTP (and the refusals
that store nothing), per-user documents, `ssechat ingest`, a rag answer streamed with its
sources, follow-ups and quality — from the scripted model, from the embedded SmolLM2 over the
project's own docs, and with dense retrieval through a real OpenAI-compatible /embeddings
server."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssechat.pipelines.rag import NO_SOURCES_ANSWER
from tests.conftest import Server, llama_cpp_server, start_server, stop_server
from tests.unit.test_retrieval_loaders import make_pdf

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 20_000  # the docs server's max_upload_bytes
RUNS = b"""# Runs

## Resume

A client that lost its connection resumes the run with the Last-Event-ID header and misses
nothing: it gets every event after that id, then the live tail.

## Grace period

A run whose last client went away keeps generating for a grace period of 30 seconds.
"""
ANSWER = "Resume the run with the Last-Event-ID header [1]. Can a run be resumed twice?"


@pytest.fixture(scope="module")
def docs(servers: Any) -> Server:
    """A scripted-model server behind a (pretend) auth proxy: every test picks its users."""
    server: Server = servers(
        model_backend="scripted",
        trusted_user_header="x-user-id",
        max_upload_bytes=str(LIMIT),
        scripted_text=ANSWER,
    )
    return server


def user() -> dict[str, str]:
    return {"x-user-id": f"u-{uuid.uuid4().hex}"}


def upload(
    server: Server, headers: dict[str, str], name: str, data: bytes, mime: str = "text/markdown"
) -> httpx.Response:
    files = {"file": (name, data, mime)}
    return httpx.post(f"{server.url}/v1/documents", files=files, headers=headers, timeout=30)


def listed(server: Server, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/v1/documents", headers=headers)
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_an_uploaded_document_is_listed_read_and_deleted(docs: Server) -> None:
    alice = user()
    created = upload(docs, alice, "runs.md", RUNS)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["status"] == "created"
    assert (doc["title"], doc["uri"], doc["mime"], doc["bytes"]) == (
        "Runs", "runs.md", "text/markdown", len(RUNS)
    )  # fmt: skip
    assert doc["chunk_count"] == 2
    assert [d["id"] for d in listed(docs, alice)] == [doc["id"]]
    assert (
        httpx.get(f"{docs.url}/v1/documents/{doc['id']}", headers=alice).json()["id"] == doc["id"]
    )
    assert httpx.delete(f"{docs.url}/v1/documents/{doc['id']}", headers=alice).status_code == 204
    gone = httpx.get(f"{docs.url}/v1/documents/{doc['id']}", headers=alice)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "document_not_found"
    assert listed(docs, alice) == []


def test_uploading_the_same_file_again_keeps_it_or_replaces_it_when_changed(docs: Server) -> None:
    alice = user()
    first = upload(docs, alice, "runs.md", RUNS).json()
    same = upload(docs, alice, "runs.md", RUNS)
    changed = upload(docs, alice, "runs.md", RUNS + b"\n## Stop\n\nCancel a run to stop it.\n")
    assert (same.status_code, same.json()["status"]) == (200, "unchanged")
    assert (changed.status_code, changed.json()["status"]) == (200, "replaced")
    assert changed.json()["id"] == first["id"]
    assert changed.json()["chunk_count"] == 3
    assert len(listed(docs, alice)) == 1


def test_another_users_document_answers_404_and_is_not_listed(docs: Server) -> None:
    alice, bob = user(), user()
    doc = upload(docs, alice, "runs.md", RUNS).json()
    assert listed(docs, bob) == []
    for method in ("GET", "DELETE"):
        response = httpx.request(method, f"{docs.url}/v1/documents/{doc['id']}", headers=bob)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "document_not_found"
    assert len(listed(docs, alice)) == 1


@pytest.mark.parametrize(
    ("name", "data", "mime", "status", "code"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n", "image/png", 415, "unsupported_document_type"),
        ("empty.md", b"", "text/markdown", 400, "empty_document"),
        ("big.txt", b"word " * (LIMIT // 5 + 1), "text/plain", 413, "document_too_large"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Cat", "application/pdf", 422, None),
        ("textless.pdf", make_pdf([""]), "application/pdf", 400, "empty_document"),
        ("binary.txt", b"\x00\x01\x02\x03", "text/plain", 422, "unreadable_document"),
    ],
)
def test_a_bad_upload_gets_a_clear_client_error_and_stores_nothing(
    docs: Server, name: str, data: bytes, mime: str, status: int, code: str | None
) -> None:
    alice = user()
    response = upload(docs, alice, name, data, mime)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    assert error["code"] == code or (code is None and error["code"] == "unreadable_document")
    assert listed(docs, alice) == []


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(docs: Server) -> None:
    alice = user()
    response = upload(docs, alice, "huge.txt", b"x" * (LIMIT * 10), "text/plain")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "document_too_large"
    assert listed(docs, alice) == []


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"file": "runs.md"}}, 415),
        ({"files": {"other": ("runs.md", RUNS, "text/markdown")}}, 400),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}}, 400),
    ],
)
def test_an_upload_that_is_not_a_multipart_file_is_refused(
    docs: Server, kwargs: dict[str, Any], status: int
) -> None:
    alice = user()
    headers = {**alice, **kwargs.pop("headers", {})}
    response = httpx.post(f"{docs.url}/v1/documents", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    assert listed(docs, alice) == []


def test_a_rag_question_streams_sources_answer_followups_and_quality(docs: Server) -> None:
    alice = user()
    upload(docs, alice, "runs.md", RUNS)
    stream = docs.chat(
        {"message": "How does a client resume a run after losing its connection?",
         "pipeline": "rag"},
        headers=alice,
    )  # fmt: skip
    assert stream.status == 200
    assert stream.types[:4] == ["start", "status", "sources", "status"]
    assert stream.types[-3:] == ["followups", "metadata", "complete"]
    assert [s["stage"] for s in stream.of("status")] == ["retrieving", "generating"]
    (sources,) = stream.of("sources")
    first = sources["sources"][0]
    assert (first["title"], first["uri"]) == ("Runs › Resume", "runs.md")
    assert "Last-Event-ID header" in first["text"]
    assert stream.of("followups")[0]["questions"] == ["Can a run be resumed twice?"]
    quality = stream.of("metadata")[0]["quality"]
    assert 0.0 <= quality["grounding_score"] <= 1.0
    assert quality["cited_sources"] == [1]
    assert stream.of("complete")[0]["text"] == ANSWER
    conversation = stream.of("start")[0]["conversation_id"]
    saved = httpx.get(f"{docs.url}/v1/conversations/{conversation}", headers=alice).json()
    assert saved["messages"][-1]["sources"][0]["uri"] == "runs.md"


def test_a_rag_question_the_documents_cannot_answer_says_so(docs: Server) -> None:
    alice = user()
    upload(docs, alice, "runs.md", RUNS)
    stream = docs.chat(
        {"message": "What is the capital of Peru?", "pipeline": "rag"}, headers=alice
    )
    assert stream.of("sources") == [{"sources": []}]
    assert stream.of("complete")[0]["text"] == NO_SOURCES_ANSWER
    assert stream.of("followups") == []


def ingest_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssechat", "ingest", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )  # fmt: skip


def test_the_ingest_command_adds_files_and_folders_and_reports_refusals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "notes.txt").write_text("Grace periods keep runs alive.")
    (tmp_path / "empty.md").write_text("")
    result = ingest_command("docs", "README.md", str(tmp_path / "notes.txt"),
                            str(tmp_path / "empty.md"), "--data-dir", str(data))  # fmt: skip
    assert result.returncode == 1  # one file was refused
    lines = result.stdout.splitlines()
    assert "created\tREADME.md\t" in result.stdout
    assert any(line.startswith("created\tdocs/") for line in lines)
    assert f"refused\t{tmp_path / 'empty.md'}\t" in result.stderr
    again = ingest_command("README.md", "--data-dir", str(data))
    assert (again.returncode, again.stdout.split("\t")[0]) == (0, "unchanged")


@pytest.mark.model
def test_the_embedded_model_answers_a_question_about_resuming_from_the_ingested_docs(
    servers: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The issue's check: `ssechat ingest docs README.md`, then a rag question about resuming
    a dropped stream streams sources and ends in complete — every default, SmolLM2."""
    data = tmp_path_factory.mktemp("rag-embedded")
    assert ingest_command("docs", "README.md", "--data-dir", str(data)).returncode == 0
    server: Server = servers(data_dir=str(data))
    stream = server.chat(
        {"message": "How do I resume a dropped stream?", "pipeline": "rag",
         "params": {"max_tokens": 48, "temperature": 0}},
        timeout=120,
    )  # fmt: skip
    assert stream.status == 200
    assert stream.of("start")[0]["model"] == "SmolLM2-135M-Instruct.Q4_1"
    sources = stream.of("sources")[0]["sources"]
    assert sources
    assert all(s["uri"].endswith(".md") for s in sources)
    assert any("Last-Event-ID" in s["text"] or "resume" in s["text"] for s in sources)
    deltas = stream.of("delta")
    assert len(deltas) > 1
    assert stream.types[-1] == "complete"
    assert stream.of("complete")[0]["text"] == "".join(d["text"] for d in deltas)
    quality = stream.of("metadata")[0]["quality"]
    assert quality["method"] == "lexical-support-v1"
    assert quality["sentences"] == 0 or 0.0 <= quality["grounding_score"] <= 1.0


@pytest.fixture(scope="module")
def embeddings_server() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server with embeddings on, serving the SmolLM2 GGUF."""
    with llama_cpp_server("embeddings", "--embedding", "true") as base:
        yield base


@pytest.mark.model
def test_dense_retrieval_through_an_openai_compatible_embeddings_server(
    embeddings_server: str, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path,
        {
            "SSECHAT_MODEL_BACKEND": "scripted",
            "SSECHAT_SCRIPTED_TEXT": ANSWER,
            "SSECHAT_EMBEDDING_BACKEND": "openai",
            "SSECHAT_EMBEDDING_BASE_URL": embeddings_server,
            "SSECHAT_EMBEDDING_MODEL": "smollm2",
            "SSECHAT_RAG_FOLLOWUPS": "0",
        },
    )
    try:
        doc = upload(server, {}, "runs.md", RUNS).json()
        assert doc["embedding_model"] == "openai:smollm2"
        # A chunk exactly as it was embedded (heading + text) as the question: the query's
        # vector must come back identical to the stored one, so its cosine is 1.
        question = (
            "Runs › Grace period\nA run whose last client went away keeps generating for a "
            "grace period of 30 seconds."
        )
        stream = server.chat({"message": question, "pipeline": "rag"})
        sources = stream.of("sources")[0]["sources"]
        grace = next(s for s in sources if s["title"] == "Runs › Grace period")
        assert grace["metadata"]["similarity"] == pytest.approx(1.0, abs=1e-3)
        similarities = [s["metadata"]["similarity"] for s in sources]
        assert all(isinstance(x, float) and -1.0 <= x <= 1.0 + 1e-3 for x in similarities)
        assert stream.types[-1] == "complete"
    finally:
        stop_server(server)
