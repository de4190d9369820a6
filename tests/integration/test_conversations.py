"""The conversations API against a real server: create, list (newest first, paginated), read,
rename, delete; and the conversations that chats create, by the server or by the client's id.

Each test is its own user (the server takes the user from a trusted header), so listings
hold exactly what the test made.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def server(servers: Any) -> Server:
    found: Server = servers(model_backend="scripted", trusted_user_header="x-user-id")
    return found


def new_user() -> dict[str, str]:
    return {"x-user-id": f"user-{uuid.uuid4().hex}"}


@pytest.fixture
def user() -> dict[str, str]:
    return new_user()


class Api:
    def __init__(self, server: Server, headers: dict[str, str]) -> None:
        self.server = server
        self.headers = headers

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.server.url, timeout=10) as client:
            return client.request(method, path, headers=self.headers, **kwargs)

    def create(self, title: str | None = None) -> dict[str, Any]:
        response = self("POST", "/v1/conversations", json={} if title is None else {"title": title})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def page(self, **params: Any) -> dict[str, Any]:
        response = self("GET", "/v1/conversations", params=params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    def get(self, conv_id: str) -> dict[str, Any]:
        response = self("GET", f"/v1/conversations/{conv_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def chat(self, body: dict[str, Any]) -> Any:
        stream = self.server.chat(body, headers=self.headers)
        assert stream.status == 200, stream.body
        assert stream.of("complete"), stream.types
        return stream


@pytest.fixture
def api(server: Server, user: dict[str, str]) -> Api:
    return Api(server, user)


def test_creating_a_conversation_returns_201_with_its_id_title_and_times(api: Api) -> None:
    created = api.create("Trip to Lisbon")
    assert set(created) == {"id", "title", "created_at", "updated_at"}
    assert created["title"] == "Trip to Lisbon"
    assert created["id"]
    created_at = datetime.fromisoformat(created["created_at"])
    assert created_at.utcoffset() is not None
    assert datetime.fromisoformat(created["updated_at"]) >= created_at
    found = api.get(created["id"])
    assert found["title"] == "Trip to Lisbon"
    assert found["messages"] == []


def test_a_conversation_can_be_created_without_a_body_or_title(api: Api) -> None:
    untitled = api("POST", "/v1/conversations")
    assert untitled.status_code == 201
    assert untitled.json()["title"] == ""
    assert api.create()["id"] != untitled.json()["id"]


def test_the_list_is_newest_first_and_pages_through_every_conversation_exactly_once(
    api: Api,
) -> None:
    made = [api.create(f"conversation {i}")["id"] for i in range(7)]
    seen: list[str] = []
    pages: list[int] = []
    cursor: str | None = None
    while True:
        page = api.page(limit=3, **({"cursor": cursor} if cursor else {}))
        pages.append(len(page["data"]))
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "pagination does not end"
    assert pages == [3, 3, 1]
    assert seen == list(reversed(made))


def test_a_list_shorter_than_the_limit_has_no_next_cursor(api: Api) -> None:
    assert api.page() == {"data": [], "next_cursor": None}
    conv = api.create("only one")
    page = api.page(limit=3)
    assert [c["id"] for c in page["data"]] == [conv["id"]]
    assert page["next_cursor"] is None
    exactly = api.page(limit=1)
    assert [c["id"] for c in exactly["data"]] == [conv["id"]]
    assert exactly["next_cursor"] is None


def test_renaming_or_chatting_in_an_old_conversation_moves_it_to_the_top(api: Api) -> None:
    oldest, middle, newest = (api.create(t)["id"] for t in ("a", "b", "c"))
    assert [c["id"] for c in api.page()["data"]] == [newest, middle, oldest]
    api("PATCH", f"/v1/conversations/{oldest}", json={"title": "renamed"})
    assert [c["id"] for c in api.page()["data"]] == [oldest, newest, middle]
    api.chat({"message": "hi", "conversation_id": middle})
    assert [c["id"] for c in api.page()["data"]] == [middle, oldest, newest]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "eyJhIjoxfQ==",  # {"a":1}
        base64.urlsafe_b64encode(b'["not a time", 3]').decode(),
        base64.urlsafe_b64encode(b'["2024-01-01T00:00:00+00:00", "three"]').decode(),
    ],
)
def test_a_cursor_the_server_never_gave_out_is_a_400(api: Api, cursor: str) -> None:
    api.create("x")
    response = api("GET", "/v1/conversations", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_a_cut_off_cursor_is_a_400(api: Api) -> None:
    for i in range(3):
        api.create(str(i))
    cursor = api.page(limit=1)["next_cursor"]
    assert cursor
    response = api("GET", "/v1/conversations", params={"cursor": cursor[: len(cursor) // 2]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_reading_a_conversation_gives_its_messages_in_order(api: Api) -> None:
    conv = api.create("q&a")["id"]
    stream = api.chat({"message": "What is the capital of France?", "conversation_id": conv})
    found = api.get(conv)
    assert found["id"] == conv
    assert found["title"] == "q&a"
    question, answer = found["messages"]
    assert (question["role"], question["content"]) == ("user", "What is the capital of France?")
    assert answer["role"] == "assistant"
    assert answer["status"] == "complete"
    assert answer["content"] == "The capital of France is Paris."
    assert answer["pipeline"] == "chat"
    assert answer["model"] == "scripted"
    assert answer["run_id"] == stream.headers["x-run-id"]
    assert answer["usage"] == stream.of("metadata")[0]["usage"]
    assert answer["id"] == stream.of("start")[0]["message_id"]


def test_a_conversation_can_be_renamed(api: Api) -> None:
    conv = api.create("old name")
    renamed = api("PATCH", f"/v1/conversations/{conv['id']}", json={"title": "new name"})
    assert renamed.status_code == 200
    assert renamed.json()["id"] == conv["id"]
    assert renamed.json()["title"] == "new name"
    assert api.get(conv["id"])["title"] == "new name"
    assert [c["title"] for c in api.page()["data"]] == ["new name"]


def test_renaming_or_deleting_a_missing_conversation_is_a_404(api: Api) -> None:
    for method, kwargs in (("PATCH", {"json": {"title": "x"}}), ("DELETE", {}), ("GET", {})):
        response = api(method, "/v1/conversations/conv_missing", **kwargs)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "conversation_not_found"


def test_a_deleted_conversation_is_gone_with_its_messages(api: Api) -> None:
    keep = api.create("keep")["id"]
    doomed = api.chat({"message": "forget me"}).of("start")[0]["conversation_id"]
    deleted = api("DELETE", f"/v1/conversations/{doomed}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = api("GET", f"/v1/conversations/{doomed}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "conversation_not_found"
    assert [c["id"] for c in api.page()["data"]] == [keep]
    assert api("DELETE", f"/v1/conversations/{doomed}").status_code == 404


def test_a_deleted_conversation_id_starts_afresh_when_chatted_in_again(api: Api) -> None:
    api.chat({"message": "first life", "conversation_id": "conv-reused"})
    assert api("DELETE", "/v1/conversations/conv-reused").status_code == 204
    api.chat({"message": "second life", "conversation_id": "conv-reused"})
    messages = api.get("conv-reused")["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["second life"]


def test_a_chat_without_a_conversation_creates_one_titled_from_the_question(api: Api) -> None:
    stream = api.chat({"message": "  How tall is the Eiffel Tower?  "})
    conv_id = stream.of("start")[0]["conversation_id"]
    listed = api.page()["data"]
    assert [(c["id"], c["title"]) for c in listed] == [(conv_id, "How tall is the Eiffel Tower?")]
    messages = api.get(conv_id)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "How tall is the Eiffel Tower?"


def test_a_long_question_gives_a_short_title_that_begins_like_it(api: Api) -> None:
    question = "Please explain " + "in great detail " * 20 + "how tides work."
    conv_id = api.chat({"message": question}).of("start")[0]["conversation_id"]
    title = api.get(conv_id)["title"]
    assert 0 < len(title) <= 80
    assert question.startswith(title.rstrip("…"))


def test_each_chat_without_a_conversation_starts_a_new_one(api: Api) -> None:
    first = api.chat({"message": "one"}).of("start")[0]["conversation_id"]
    second = api.chat({"message": "two"}).of("start")[0]["conversation_id"]
    assert first != second
    assert [c["id"] for c in api.page()["data"]] == [second, first]


def test_a_chat_with_a_new_client_chosen_id_creates_the_conversation_under_that_id(
    api: Api,
) -> None:
    stream = api.chat({"message": "hello there", "conversation_id": "conv456"})
    assert stream.of("start")[0]["conversation_id"] == "conv456"
    found = api.get("conv456")
    assert found["title"] == "hello there"
    assert [m["role"] for m in found["messages"]] == ["user", "assistant"]
    api.chat({"message": "and again", "conversation_id": "conv456"})
    assert [c["id"] for c in api.page()["data"]] == ["conv456"]
    assert len(api.get("conv456")["messages"]) == 4


def test_two_users_may_choose_the_same_conversation_id_without_seeing_each_other(
    server: Server,
) -> None:
    alice, bob = Api(server, new_user()), Api(server, new_user())
    alice.chat({"message": "alice asks", "conversation_id": "conv456"})
    bob.chat({"message": "bob asks", "conversation_id": "conv456"})
    alice.chat({"message": "alice again", "conversation_id": "conv456"})
    a = alice.get("conv456")
    b = bob.get("conv456")
    assert [m["content"] for m in a["messages"] if m["role"] == "user"] == [
        "alice asks",
        "alice again",
    ]
    assert [m["content"] for m in b["messages"] if m["role"] == "user"] == ["bob asks"]
    assert (a["title"], b["title"]) == ("alice asks", "bob asks")
    assert bob("DELETE", "/v1/conversations/conv456").status_code == 204
    assert len(alice.get("conv456")["messages"]) == 4
