"""The sql pipeline against real servers: a question on the default (sample) database streams
sql, table and csv, and the reopened conversation holds all three; the CSV downloads for its
owner only; a hostile statement changes nothing; and the embedded model ends in complete or a
clear error, never a hang."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import orjson
import pytest

from ssechat.sqlguard.execute import SAMPLE_DATABASE
from tests.conftest import Server

COUNT = "SELECT COUNT(*) AS customers FROM customers"
SQL_ERRORS = {"sql_refused", "sql_failed", "sql_not_found"}


def two_users(servers: Any) -> Server:
    server: Server = servers(model_backend="scripted", trusted_user_header="x-user-id")
    return server


def ask(server: Server, user: str, params: dict[str, Any], **kwargs: Any) -> Any:
    body = {"message": "How many customers are there?", "pipeline": "sql", "params": params}
    return server.chat(body, headers={"x-user-id": user}, **kwargs)


def download(server: Server, url: str, user: str) -> httpx.Response:
    return httpx.get(server.url + url, headers={"x-user-id": user}, timeout=10)


def digest() -> str:
    return hashlib.sha256(SAMPLE_DATABASE.read_bytes()).hexdigest()


def tool_call(sql: str) -> dict[str, str]:
    return {"name": "run_sql", "arguments": orjson.dumps({"sql": sql}).decode()}


def test_a_question_streams_sql_table_csv_and_a_summary(servers: Any) -> None:
    server = two_users(servers)
    stream = ask(server, "alice", {"tool_call": tool_call(COUNT), "text": "There are 250."})
    assert stream.status == 200
    assert stream.types == [
        "start", "status", "sql", "status", "table", "csv", "status",
        "delta", "delta", "delta", "metadata", "complete",
    ]  # fmt: skip
    assert stream.of("start")[0]["pipeline"] == "sql"
    assert [s["stage"] for s in stream.of("status")] == [
        "generating_sql", "running_sql", "generating"
    ]  # fmt: skip
    assert stream.of("sql") == [{"sql": COUNT, "dialect": "sqlite"}]
    assert stream.of("table") == [
        {"columns": ["customers"], "rows": [[250]], "row_count": 1, "truncated": False}
    ]
    (csv,) = stream.of("csv")
    assert csv["url"].startswith("/v1/files/")
    assert (csv["rows"], csv["bytes"]) == (1, len(b"customers\r\n250\r\n"))
    (complete,) = stream.of("complete")
    assert complete["sql"] == COUNT
    assert complete["csv_url"] == csv["url"]
    assert complete["text"] == "There are 250."


def test_a_reopened_conversation_brings_back_the_sql_table_preview_and_csv_link(
    servers: Any,
) -> None:
    server = two_users(servers)
    stream = ask(server, "alice", {"tool_call": tool_call(COUNT), "text": "There are 250."})
    conversation_id = stream.of("start")[0]["conversation_id"]
    reopened = httpx.get(
        f"{server.url}/v1/conversations/{conversation_id}",
        headers={"x-user-id": "alice"},
        timeout=10,
    )
    assert reopened.status_code == 200
    question, answer = reopened.json()["messages"]
    assert question["table_preview"] is None
    assert answer["status"] == "complete"
    assert answer["content"] == "There are 250."
    assert answer["sql"] == COUNT
    assert answer["sql_dialect"] == stream.of("sql")[-1]["dialect"]
    assert answer["table_preview"] == stream.of("table")[0]
    assert answer["csv_url"] == stream.of("csv")[0]["url"]
    assert answer["csv"] == stream.of("csv")[0]  # url, rows and bytes, as streamed


def test_the_csv_downloads_for_its_owner_and_is_404_for_anyone_else(servers: Any) -> None:
    server = two_users(servers)
    stream = ask(server, "alice", {"text": f"```sql\n{COUNT}\n```"})
    (csv,) = stream.of("csv")
    mine = download(server, csv["url"], "alice")
    assert mine.status_code == 200
    assert mine.content == b"customers\r\n250\r\n"
    assert mine.headers["content-type"] == "text/csv; charset=utf-8"
    assert mine.headers["content-disposition"].startswith("attachment;")
    assert mine.headers["cache-control"] == "private, no-store"
    theirs = download(server, csv["url"], "bob")
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "file_not_found"
    made_up = download(server, "/v1/files/" + "A" * 32 + ".csv", "alice")
    assert made_up.status_code == 404
    assert made_up.json()["error"]["code"] == "file_not_found"


def test_an_expired_csv_is_404_even_for_its_owner(servers: Any) -> None:
    server: Server = servers(model_backend="scripted", file_expiry="1")
    stream = server.chat(
        {"message": "Count", "pipeline": "sql", "params": {"text": f"```sql\n{COUNT}\n```"}}
    )
    (csv,) = stream.of("csv")
    assert httpx.get(server.url + csv["url"], timeout=10).status_code == 200
    time.sleep(1.5)
    gone = httpx.get(server.url + csv["url"], timeout=10)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE customers",
        "DELETE FROM orders; SELECT 1",
        "SELECT 1; -- hidden\nUPDATE products SET price = 0",
        "ATTACH DATABASE '/tmp/ssechat-e2e.db' AS pwned",
    ],
)
def test_a_hostile_statement_ends_in_a_clear_error_and_changes_nothing(
    servers: Any, sql: str
) -> None:
    server = two_users(servers)
    before = digest()
    stream = ask(server, "mallory", {"tool_call": tool_call(sql), "text": "Done."})
    assert stream.types[-1] == "error"
    assert "sql" in stream.types  # the client sees what was refused
    (error,) = stream.of("error")
    assert error["code"] == "sql_refused"
    assert error["message"].startswith("the query was refused: ")
    assert "csv" not in stream.types
    assert digest() == before


@pytest.mark.model
def test_the_embedded_model_ends_in_complete_or_a_clear_error(servers: Any) -> None:
    server: Server = servers()  # every default: llamacpp (SmolLM2-135M), the sample shop
    started = time.monotonic()
    stream = server.chat(
        {"message": "How many orders were cancelled?", "pipeline": "sql"}, timeout=180
    )
    assert time.monotonic() - started < 180
    assert stream.status == 200
    assert stream.types[0] == "start"
    assert stream.types[-1] in ("complete", "error")
    if stream.types[-1] == "complete":
        (csv,) = stream.of("csv")
        assert "sql" in stream.types
        assert httpx.get(server.url + csv["url"], timeout=10).status_code == 200
        assert stream.of("complete")[0]["csv_url"] == csv["url"]
    else:
        (error,) = stream.of("error")
        assert error["code"] in SQL_ERRORS
        assert error["message"]
