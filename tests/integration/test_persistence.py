"""What a chat leaves in the conversation, read back through the API of a real server: the
question and the answer however it ended (complete, cancelled, failed, abandoned), the answer
saved while it streams, several turns in order, and idempotent resubmits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Server, Stream

TEXT = " ".join(f"word{i}" for i in range(40))


def get_conversation(server: Server, conv_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get(f"/v1/conversations/{conv_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def answer_of(server: Server, conv_id: str) -> dict[str, Any]:
    """The conversation's last (assistant) message."""
    answer: dict[str, Any] = get_conversation(server, conv_id)["messages"][-1]
    assert answer["role"] == "assistant"
    return answer


def poll(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """`check()`'s first truthy result, trying until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def deltas(stream: Stream) -> str:
    return "".join(d["text"] for d in stream.of("delta"))


def whole_run(server: Server, run_id: str) -> Stream:
    """Every event of a run, from its log (while retained)."""
    stream = server.stream("GET", f"/v1/runs/{run_id}/events")
    assert stream.status == 200
    return stream


def cancel(server: Server, run_id: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.post(f"/v1/runs/{run_id}/cancel")


def conv() -> str:
    return f"conv-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def no_grace(servers: Any) -> Server:
    server: Server = servers(model_backend="scripted", grace_period="0")
    return server


# -- how an answer ended ------------------------------------------------------------------


def test_a_completed_chat_stores_the_question_and_the_whole_answer(scripted: Server) -> None:
    stream = scripted.chat(
        {"message": " What is the capital of France? ", "params": {"text": TEXT}}
    )
    start = stream.of("start")[0]
    complete = stream.of("complete")[0]
    # the server saves before it announces `complete`: no polling needed
    question, answer = get_conversation(scripted, start["conversation_id"])["messages"]
    assert question["role"] == "user"
    assert question["status"] == "complete"
    assert question["content"] == "What is the capital of France?"
    assert answer["role"] == "assistant"
    assert answer["status"] == "complete"
    assert answer["content"] == complete["text"] == TEXT
    assert answer["usage"] == stream.of("metadata")[0]["usage"] == complete["usage"]
    assert answer["usage"]["completion_tokens"] == len(stream.of("delta"))
    assert answer["id"] == start["message_id"] == complete["message_id"]
    assert answer["run_id"] == question["run_id"] == stream.headers["x-run-id"]
    assert (answer["pipeline"], answer["model"]) == ("chat", "scripted")
    assert answer["error"] is None


def test_a_cancelled_run_is_saved_as_cancelled_with_the_text_streamed_before_the_stop(
    scripted: Server,
) -> None:
    first = scripted.chat({"message": "hi", "params": {"text": TEXT, "delay": 0.1}}, stop_after=5)
    run_id = first.headers["x-run-id"]
    assert cancel(scripted, run_id).status_code == 200
    run = whole_run(scripted, run_id)
    assert run.of("error")[0]["code"] == "cancelled"
    answer = answer_of(scripted, first.of("start")[0]["conversation_id"])
    assert answer["status"] == "cancelled"
    assert answer["content"]
    assert answer["content"] == deltas(run)
    assert TEXT.startswith(answer["content"])
    assert len(answer["content"]) < len(TEXT)


def test_a_model_failure_is_saved_as_an_error_with_the_text_before_it(scripted: Server) -> None:
    stream = scripted.chat({"message": "hi", "params": {"text": TEXT, "fail_after": 3}})
    assert stream.of("error")[0]["code"] == "model_error"
    answer = answer_of(scripted, stream.of("start")[0]["conversation_id"])
    assert answer["status"] == "error"
    assert answer["content"] == deltas(stream) == "word0 word1 word2"
    assert answer["error"]["code"] == "model_error"
    assert answer["error"]["message"]
    question = get_conversation(scripted, stream.of("start")[0]["conversation_id"])["messages"][0]
    assert (question["role"], question["status"], question["content"]) == ("user", "complete", "hi")


def test_an_answer_nobody_waited_for_is_saved_as_interrupted_with_its_partial_text(
    no_grace: Server,
) -> None:
    first = no_grace.chat({"message": "hi", "params": {"text": TEXT, "delay": 0.1}}, stop_after=5)
    conv_id = first.of("start")[0]["conversation_id"]
    answer = poll(
        lambda: (a := answer_of(no_grace, conv_id))["status"] == "interrupted" and a, timeout=5
    )
    assert answer, f"still {answer_of(no_grace, conv_id)['status']} after 5 s"
    run = whole_run(no_grace, first.headers["x-run-id"])
    assert run.of("error")[0]["code"] == "interrupted"
    assert answer["content"]
    assert answer["content"] == deltas(run)
    assert TEXT.startswith(answer["content"])
    assert len(answer["content"]) < len(TEXT)


def test_the_answer_is_saved_as_it_streams_not_only_at_the_end(scripted: Server) -> None:
    first = scripted.chat({"message": "hi", "params": {"text": TEXT, "delay": 0.1}}, stop_after=3)
    conv_id = first.of("start")[0]["conversation_id"]
    seen: list[str] = []

    def grown() -> bool:
        answer = answer_of(scripted, conv_id)
        assert answer["status"] == "streaming", "the run ended before two saves were seen"
        if answer["content"] and answer["content"] not in seen:
            seen.append(answer["content"])
        return len(seen) >= 2

    # 40 words at 0.1 s: 4 s of streaming; saves come at least once a second
    assert poll(grown, timeout=3.5), f"partial saves seen: {seen}"
    assert all(TEXT.startswith(text) and len(text) < len(TEXT) for text in seen)
    assert len(seen[1]) > len(seen[0])
    run = scripted.stream(
        "GET", f"/v1/runs/{first.headers['x-run-id']}/events", headers={"last-event-id": "3"}
    )
    assert run.of("complete")[0]["text"] == TEXT
    final = answer_of(scripted, conv_id)
    assert (final["status"], final["content"]) == ("complete", TEXT)


# -- several turns ------------------------------------------------------------------------


def test_each_turn_of_a_conversation_is_stored_in_order(scripted: Server) -> None:
    conv_id = conv()
    turns = [("First question?", "First answer."), ("Second?", "Second answer, longer.")]
    turns.append(("And a third one?", "Third."))
    streams = [
        scripted.chat({"message": q, "conversation_id": conv_id, "params": {"text": a}})
        for q, a in turns
    ]
    messages = get_conversation(scripted, conv_id)["messages"]
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        row for q, a in turns for row in (("user", q, "complete"), ("assistant", a, "complete"))
    ]
    assert [m["run_id"] for m in messages] == [
        s.headers["x-run-id"] for s in streams for _ in range(2)
    ]
    assert len({s.headers["x-run-id"] for s in streams}) == 3


def words(text: str) -> int:
    return len(text.split())


def test_each_question_is_sent_with_the_earlier_exchanges_of_its_conversation(
    scripted: Server,
) -> None:
    """The scripted model counts the words it was sent as prompt tokens: a follow-up costs
    exactly the earlier answer and the new question more than the question before it."""
    conv_id = conv()
    q1, a1, q2, a2, q3 = "one two three", "four five", "six", "seven eight nine ten", "eleven"
    usage = [
        scripted.chat({"message": q, "conversation_id": conv_id, "params": {"text": a}}).of(
            "complete"
        )[0]["usage"]["prompt_tokens"]
        for q, a in ((q1, a1), (q2, a2), (q3, "x"))
    ]
    assert usage[1] - usage[0] == words(a1) + words(q2)
    assert usage[2] - usage[1] == words(a2) + words(q3)


def test_a_failed_answer_is_left_out_of_the_next_questions_context_but_its_question_stays(
    scripted: Server,
) -> None:
    conv_id = conv()
    ask = {"conversation_id": conv_id}
    base = scripted.chat({**ask, "message": "alpha", "params": {"text": "a b"}})
    failed = scripted.chat(
        {**ask, "message": "beta gamma", "params": {"text": "c d e f", "fail_after": 2}}
    )
    assert failed.of("error")[0]["code"] == "model_error"
    after = scripted.chat({**ask, "message": "delta", "params": {"text": "g"}})
    before_tokens = base.of("complete")[0]["usage"]["prompt_tokens"]
    after_tokens = after.of("complete")[0]["usage"]["prompt_tokens"]
    assert after_tokens - before_tokens == words("a b") + words("beta gamma delta")
    statuses = [m["status"] for m in get_conversation(scripted, conv_id)["messages"]]
    assert statuses == ["complete", "complete", "complete", "error", "complete", "complete"]


# -- idempotent resubmits -----------------------------------------------------------------


def test_resubmitting_a_message_while_its_run_streams_joins_that_run(scripted: Server) -> None:
    conv_id = conv()
    body = {
        "message": "hi",
        "conversation_id": conv_id,
        "client_message_id": "cm-1",
        "params": {"text": TEXT, "delay": 0.03},
    }
    first = scripted.chat(body, stop_after=4)  # the tab reloads mid-answer
    run_id = first.headers["x-run-id"]
    assert answer_of(scripted, conv_id)["status"] == "streaming"
    again = scripted.chat(body)
    assert again.status == 200
    assert again.headers["x-run-id"] == run_id
    assert again.of("start")[0]["run_id"] == run_id
    assert again.of("start") == first.of("start")
    assert again.of("complete")[0]["text"] == TEXT
    messages = get_conversation(scripted, conv_id)["messages"]
    assert [(m["role"], m["run_id"]) for m in messages] == [("user", run_id), ("assistant", run_id)]
    assert messages[0]["client_message_id"] == "cm-1"


def test_a_message_submitted_several_times_at_once_starts_one_run(scripted: Server) -> None:
    conv_id = conv()
    scripted.chat({"message": "earlier", "conversation_id": conv_id})
    body = {
        "message": "hi",
        "conversation_id": conv_id,
        "client_message_id": "double-click",
        "params": {"text": TEXT, "delay": 0.01},
    }
    with ThreadPoolExecutor(6) as pool:
        streams = list(pool.map(lambda _: scripted.chat(body), range(6)))
    assert [s.status for s in streams] == [200] * 6
    assert len({s.headers["x-run-id"] for s in streams}) == 1
    assert all(s.of("complete")[0]["text"] == TEXT for s in streams)
    messages = get_conversation(scripted, conv_id)["messages"]
    assert [m["content"] for m in messages] == [
        "earlier",
        "The capital of France is Paris.",
        "hi",
        TEXT,
    ]


def test_resubmitting_a_message_after_its_run_ended_replays_the_same_answer(
    scripted: Server,
) -> None:
    conv_id = conv()
    body = {"message": "hi", "conversation_id": conv_id, "client_message_id": "cm-1"}
    first = scripted.chat({**body, "params": {"text": TEXT}})
    again = scripted.chat({**body, "params": {"text": "a different answer"}})
    assert again.status == 200
    assert again.headers["x-run-id"] == first.headers["x-run-id"]
    assert again.of("complete") == first.of("complete")
    assert [m.data for m in again.messages] == [m.data for m in first.messages]
    messages = get_conversation(scripted, conv_id)["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", "hi"), ("assistant", TEXT)]


def test_the_same_client_message_id_in_another_conversation_starts_a_new_run(
    scripted: Server,
) -> None:
    body = {"message": "hi", "client_message_id": "cm-shared", "params": {"text": TEXT}}
    one, two = conv(), conv()
    first = scripted.chat({**body, "conversation_id": one})
    second = scripted.chat({**body, "conversation_id": two, "params": {"text": "other"}})
    assert second.headers["x-run-id"] != first.headers["x-run-id"]
    assert second.of("complete")[0]["text"] == "other"
    assert answer_of(scripted, one)["content"] == TEXT
    assert answer_of(scripted, two)["content"] == "other"
    # without a conversation id each chat is a new conversation, hence a new run too
    fresh = scripted.chat(body)
    assert fresh.headers["x-run-id"] not in {first.headers["x-run-id"], second.headers["x-run-id"]}
