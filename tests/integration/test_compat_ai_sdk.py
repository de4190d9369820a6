"""The Vercel AI SDK's own client code (the `ai` package: DefaultChatTransport and
readUIMessageStream, run by Node from tests/js/ai_sdk_chat.mjs) against a real server."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.conftest import Server
from tests.integration.conftest import TEXT, WORDS, compat_env, node


def ui(role: str, text: str, id: str) -> dict[str, Any]:
    return {"id": id, "role": role, "parts": [{"type": "text", "text": text}]}


def text_of(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


def test_the_transport_reads_the_answer_into_one_assistant_message(compat: Server) -> None:
    seen = node("ai_sdk_chat.mjs", compat.url, "send", "chat-1", "What is the capital?")
    message = seen["message"]
    assert (seen["status"], seen["errors"]) == ("ok", [])
    assert message["role"] == "assistant"
    assert text_of(message) == TEXT
    assert message["id"].startswith("msg_")
    assert message["metadata"]["conversation_id"] == "chat-1"
    assert message["metadata"]["finish_reason"] == "stop"
    assert message["metadata"]["usage"]["completion_tokens"] == len(WORDS)
    assert seen["chunks"][:2] == ["start", "start-step"]
    assert seen["chunks"][-3:] == ["text-end", "finish-step", "finish"]
    assert seen["snapshots"] > len(WORDS)  # the message grew as the text streamed


def test_the_chat_id_is_the_conversation_and_earlier_messages_are_history(
    compat: Server,
) -> None:
    first = node("ai_sdk_chat.mjs", compat.url, "send", "chat-2", "Hello there")
    history = json.dumps([ui("user", "Hello there", "u1"), first["message"]])
    second = node("ai_sdk_chat.mjs", compat.url, "send", "chat-2", "And then?", history)
    # The scripted model counts the words it is given: the second prompt holds the first
    # question again, the first answer and the new two-word question.
    grown = (
        second["message"]["metadata"]["usage"]["prompt_tokens"]
        - first["message"]["metadata"]["usage"]["prompt_tokens"]
    )
    assert grown == len(WORDS) + 2
    stored = httpx.get(f"{compat.url}/v1/conversations/chat-2").json()
    assert [m["content"] for m in stored["messages"]] == ["Hello there", TEXT, "And then?", TEXT]


def test_the_response_announces_the_ui_message_stream_protocol(compat: Server) -> None:
    stream = compat.stream("POST", "/api/chat", json={"messages": [ui("user", "hi", "u")]})
    assert stream.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.messages[-1].data == "[DONE]"
    assert not stream.chunks[0].startswith(b"retry:")


def test_a_failure_reaches_the_readers_on_error_with_the_text_so_far(failing: Server) -> None:
    seen = node("ai_sdk_chat.mjs", failing.url, "send", "chat-3", "hi")
    assert seen["errors"] == ["scripted failure after 3 tokens"]
    assert text_of(seen["message"]) == " ".join(WORDS[:3])
    assert seen["chunks"][-1] == "error"


def test_a_request_whose_last_message_is_not_the_users_is_refused(compat: Server) -> None:
    history = json.dumps([ui("user", "hi", "u1"), ui("assistant", "hello", "a1")])
    # The script always adds a user message: send only the history through a raw request.
    refused = compat.stream("POST", "/api/chat", json={"messages": json.loads(history)})
    assert (refused.status, refused.json()["error"]["code"]) == (400, "invalid_request")


def test_resume_follows_the_chats_answer_in_progress_then_finds_none(servers: Any) -> None:
    # Node takes about a second to start on a slow machine: the answer must outlast it.
    compat: Server = servers(**compat_env(scripted_delay="0.3"))
    body = {"id": "chat-4", "messages": [ui("user", "hi", "u1")]}
    started = threading.Event()

    def ask() -> None:  # another tab: starts the answer and reads it to the end
        with (
            httpx.Client(base_url=compat.url, timeout=30) as client,
            client.stream("POST", "/api/chat", json=body) as response,
        ):
            for _ in response.iter_raw():
                started.set()

    asker = threading.Thread(target=ask)
    asker.start()
    assert started.wait(10)
    resumed = node("ai_sdk_chat.mjs", compat.url, "resume", "chat-4")
    asker.join(30)
    assert (resumed["status"], text_of(resumed["message"])) == ("ok", TEXT)
    after = node("ai_sdk_chat.mjs", compat.url, "resume", "chat-4")
    assert after["status"] == "no active stream"
