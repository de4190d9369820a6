"""The seed documents' own client code against a real server: each gets a complete answer.

Python code from a seed runs as written (seed 000's `requests` loop); JavaScript runs in Node
from tests/js/seeds/, copied from the seed with only the base URL changed (and TypeScript types
removed); the seeds' curl lines run as curl. The routes' pipelines are all set to `chat`
(the `rag` and `sql` pipelines the defaults name are not needed to test the wire) and the model
is the scripted one, so every answer is `TEXT`.

The servers, `node` and seed 000's loop live in tests/integration/conftest.py, shared with the
other test_compat_* files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from ssechat.sse import ServerSentEvent, decode
from tests.conftest import Server
from tests.integration.conftest import TEXT, WORDS, compat_env, node, seed_000_requests_loop


def curl(*args: str) -> list[ServerSentEvent]:
    """Run curl (as a seed document writes it) and decode what it printed as SSE."""
    exe = shutil.which("curl")
    if exe is None:
        pytest.skip("curl is not installed")
    done = subprocess.run([exe, "-sS", *args], capture_output=True, timeout=60, check=True)
    return decode([done.stdout])


def data(messages: list[ServerSentEvent]) -> list[Any]:
    return [json.loads(m.data) for m in messages if m.data != "[DONE]"]


# -- seed 000 ----------------------------------------------------------------------------------


def test_seed_000_python_requests_loop_prints_the_answer_as_it_streams_and_in_full(
    compat: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_000_requests_loop(compat.url)
    assert capsys.readouterr().out == f"{TEXT}\n\nFull answer: {TEXT}\n"


def test_seed_000_fetch_loop_in_node_fills_the_page_and_logs_complete(compat: Server) -> None:
    seen = node("seeds/seed000_fetch.mjs", compat.url)
    assert seen["response"] == TEXT
    ((label, complete),) = seen["logs"]
    assert (label, complete["event"], complete["answer"]) == ("Complete:", "complete", TEXT)


def test_seed_000_curl_line_gets_start_chunks_and_complete_with_the_answer(
    compat: Server,
) -> None:
    messages = curl(
        "-X",
        "POST",
        f"{compat.url}/api/vanna/v2/chat_sse",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"message": "Show me all tables", '
        '"headers": {"x-user-id": "user123", "x-conversation-id": "conv456"}}',
    )
    assert [m.event for m in messages] == ["start", *["chunk"] * len(WORDS), "complete"]
    assert data(messages)[0]["conversation_id"] == "conv456"
    assert data(messages)[-1]["answer"] == TEXT


def test_seed_000_conversation_comes_from_the_body_headers_or_the_field(compat: Server) -> None:
    for body in (
        {"message": "hi", "headers": {"x-conversation-id": "vanna-a"}},
        {"message": "hi", "conversation_id": "vanna-b"},
    ):
        compat.stream("POST", "/api/vanna/v2/chat_sse", json=body)
    for conversation in ("vanna-a", "vanna-b"):
        found = httpx.get(f"{compat.url}/v1/conversations/{conversation}").json()
        assert [m["content"] for m in found["messages"]] == ["hi", TEXT]


def test_seed_000_body_user_is_ignored_without_a_trusted_header(compat: Server) -> None:
    body = {"message": "hi", "headers": {"x-user-id": "mallory"}, "conversation_id": "vanna-c"}
    compat.stream("POST", "/api/vanna/v2/chat_sse", json=body)
    # Stored for the local user (the only one of a server without keys), not for "mallory".
    assert httpx.get(f"{compat.url}/v1/conversations/vanna-c").status_code == 200


def test_seed_000_body_user_stands_in_for_the_trusted_header(servers: Any) -> None:
    trusted: Server = servers(**compat_env(trusted_user_header="x-user-id"))
    body = {"message": "hi", "headers": {"x-user-id": "alice"}, "conversation_id": "mine"}
    assert trusted.stream("POST", "/api/vanna/v2/chat_sse", json=body).status == 200
    body = {"message": "hi", "user_id": "bob", "conversation_id": "his"}
    assert trusted.stream("POST", "/api/vanna/v2/chat_sse", json=body).status == 200
    # The real header wins over the body.
    body = {"message": "hi", "headers": {"x-user-id": "alice"}, "conversation_id": "hers"}
    headers = {"x-user-id": "carol"}
    trusted.stream("POST", "/api/vanna/v2/chat_sse", json=body, headers=headers)

    def owner_sees(user: str, conversation: str) -> bool:
        url = f"{trusted.url}/v1/conversations/{conversation}"
        return httpx.get(url, headers={"x-user-id": user}).status_code == 200

    owners = {
        c: [u for u in ("alice", "bob", "carol") if owner_sees(u, c)]
        for c in ("mine", "his", "hers")
    }
    assert owners == {"mine": ["alice"], "his": ["bob"], "hers": ["carol"]}
    # With no user anywhere the request is refused, as any other without the header.
    refused = trusted.stream("POST", "/api/vanna/v2/chat_sse", json={"message": "hi"})
    assert (refused.status, refused.json()["error"]["code"]) == (401, "unauthorized")


# -- seed 001 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/chat/stream", "/chat/stream"])
def test_seed_001_stream_client_in_node_gets_stage_tokens_metadata_and_completes(
    compat: Server, path: str
) -> None:
    seen = node("seeds/seed001_fetch.mjs", compat.url, path, "What is in my documents?")
    assert "".join(seen["tokens"]) == TEXT
    assert seen["stages"] == ["generating"]
    assert seen["metadata"][0]["usage"]["completion_tokens"] == len(WORDS)
    assert seen["completes"] >= 1  # the seed's client calls it on [DONE] and again at the end
    assert seen["errors"] == []


def test_seed_001_session_is_the_conversation(compat: Server) -> None:
    compat.stream("POST", "/chat/stream", json={"message": "hi", "session_id": "keyed-s"})
    found = httpx.get(f"{compat.url}/v1/conversations/keyed-s").json()
    assert [m["content"] for m in found["messages"]] == ["hi", TEXT]


# -- seed 002 ----------------------------------------------------------------------------------


def test_seed_002_eventsource_service_in_node_gets_connected_messages_and_done(
    compat: Server,
) -> None:
    seen = node("seeds/seed002_eventsource.mjs", compat.url, "eventsource", "How did I sleep?")
    texts = [m["content"] for m in seen["messages"] if m["type"] == "text"]
    assert "".join(texts) == TEXT
    assert (seen["connects"], seen["completes"], seen["errors"]) == (1, 1, [])


def test_seed_002_post_stream_client_in_node_gets_every_update(compat: Server) -> None:
    seen = node("seeds/seed002_eventsource.mjs", compat.url, "post", "How did I sleep?")
    texts = [m["content"] for m in seen["messages"] if m["type"] == "text"]
    assert "".join(texts) == TEXT
    assert seen["messages"][0]["type"] == "specialist_update"
    assert seen["errors"] == []


def test_seed_002_curl_line_gets_the_eventsource_stream(compat: Server) -> None:
    url = f"{compat.url}/api/chat/stream?message=test"
    messages = curl("-N", "-H", "Accept: text/event-stream", url)
    assert (messages[0].event, messages[-1].event) == ("connected", "done")
    texts = [d["content"] for d in data(messages) if d.get("type") == "text"]
    assert "".join(texts) == TEXT


def test_seed_002_post_asked_for_json_answers_with_one_body(compat: Server) -> None:
    response = httpx.post(
        f"{compat.url}/api/chat/message",
        json={"message": "How did I sleep?"},
        headers={"accept": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["content"] == TEXT
    assert body["run_id"] == response.headers["x-run-id"]
    assert "".join(u["content"] for u in body["updates"] if u["type"] == "text") == TEXT


def test_seed_002_eventsource_reconnect_resumes_the_same_run_and_then_gets_204(
    compat: Server,
) -> None:
    """What an EventSource does after a dropped connection: the same URL again, with the id of
    the last message it saw. It must get the rest of the same answer, not a new one."""
    first = compat.stream("GET", "/api/chat/stream?message=hi", stop_after=4)
    last_id = first.messages[-1].id
    run_id = last_id.split(":")[0]
    assert run_id == first.headers["x-run-id"]
    rest = compat.stream("GET", "/api/chat/stream?message=hi", headers={"last-event-id": last_id})
    assert rest.headers["x-run-id"] == run_id
    seen = [*first.messages, *rest.messages]
    assert [int(m.id.split(":")[1]) for m in seen] == list(range(1, len(seen) + 1))
    texts = [d["content"] for d in data(seen) if d.get("type") == "text"]
    assert "".join(texts) == TEXT
    again = compat.stream(
        "GET", "/api/chat/stream?message=hi", headers={"last-event-id": seen[-1].id}
    )
    assert again.status == 204  # the end was seen: an EventSource stops here


# -- seed 003 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/chat/1/stream", "/api/chat/1/stream"])
def test_seed_003_fetch_client_in_node_builds_the_message_until_done(
    compat: Server, path: str
) -> None:
    seen = node("seeds/seed003_fetch.mjs", compat.url, path, "Hello")
    assert seen["message"] == TEXT
    assert seen["done"] is True
    assert seen["events"][:2] == ["start", "status"]
    assert seen["events"][-2:] == ["metadata", "done"]


def test_seed_003_curl_line_gets_start_with_the_session_and_the_whole_response(
    compat: Server,
) -> None:
    messages = curl(
        "-X",
        "POST",
        f"{compat.url}/chat/1/stream",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"question": "Hello", "model": "mistral"}',
        "--no-buffer",
    )
    start, *_, metadata, done = data(messages)
    assert start == {"type": "start", "session_id": 1, "model": "scripted"}
    assert metadata["content"]["total_response"] == TEXT
    assert done == {"type": "done"}


# -- seed 004 ----------------------------------------------------------------------------------


def test_seed_004_curl_line_gets_a_snapshot_then_deltas_then_done(compat: Server) -> None:
    messages = curl(
        "-N",
        "-X",
        "POST",
        f"{compat.url}/api/v1/chat/stream",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Authorization: Bearer YOUR_TOKEN",
        "-d",
        '{"text":"Hello!"}',
    )
    assert messages[0].event == "snapshot"
    snapshot = json.loads(messages[0].data)
    assert [m["content"] for m in snapshot["messages"]] == ["Hello!", ""]
    deltas = data(messages[1:])
    assert "".join(d["delta"] for d in deltas) == TEXT
    assert deltas[-1] == {"delta": "", "done": True}


def test_seed_004_conversation_and_metadata_carry_into_the_snapshot(compat: Server) -> None:
    body = {"text": "Hi", "conversation_id": "delta-c", "metadata": {"client": "nextjs-frontend"}}
    compat.stream("POST", "/api/v1/chat/stream", json=body)
    second = compat.stream("POST", "/api/v1/chat/stream", json=body)
    snapshot = json.loads(second.messages[0].data)
    assert snapshot["id"] == "delta-c"
    assert snapshot["metadata"] == {"client": "nextjs-frontend"}
    assert [m["content"] for m in snapshot["messages"]] == ["Hi", TEXT, "Hi", ""]
    assert snapshot["run_id"] == second.headers["x-run-id"]
