"""`ssechat serve` with its store on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import assert_unavailable, start_server, stop_server
from tests.postgres import Cluster, postgres_bin, postgres_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs Debian's postgresql)")
    with postgres_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def database_url(cluster: Cluster) -> str:
    return cluster.url


def test_conversations_are_stored_in_postgresql_and_survive_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_DATABASE_URL": database_url}
    first = start_server(tmp_path, env)
    try:
        stream = first.chat({"message": "hi", "conversation_id": "pg-conv"})
        assert stream.of("complete")[0]["text"] == "The capital of France is Paris."
    finally:
        stop_server(first)
    second = start_server(tmp_path, env)  # a different process, the same database
    try:
        found = httpx.get(f"{second.url}/v1/conversations/pg-conv").json()
        assert [(m["role"], m["status"]) for m in found["messages"]] == [
            ("user", "complete"),
            ("assistant", "complete"),
        ]
        assert found["messages"][1]["content"] == "The capital of France is Paris."
        assert found["messages"][1]["usage"]["completion_tokens"] == 6
    finally:
        stop_server(second)
    assert not (tmp_path / "data").exists() or not list(tmp_path.glob("data-*/ssechat.db"))


def test_without_its_database_a_server_answers_503_and_recovers_when_it_is_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_DATABASE_URL": cluster.url}
    server = start_server(tmp_path, env)
    try:
        assert httpx.get(f"{server.url}/ready").json()["status"] == "ready"
        cluster.stop()
        try:
            assert_unavailable(server, "store", "store_unavailable")
        finally:
            cluster.start()
        assert httpx.get(f"{server.url}/ready").status_code == 200
        again = server.chat({"message": "hi"})
        assert again.of("complete")[0]["text"] == "The capital of France is Paris."
    finally:
        stop_server(server)
