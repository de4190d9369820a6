"""Who is asking, against real servers: the local user, API keys, a trusted proxy header; and
that one user can never reach another's conversations or runs (404, as for a made-up id)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssechat.auth import KEYS_RECHECK_S
from tests.conftest import Server, start_server, stop_server

SLOW_TEXT = " ".join(f"word{i}" for i in range(20))
SLOW = {"text": SLOW_TEXT, "delay": 0.05}


def keys_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssechat", "keys", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def request(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.request(method, path, **kwargs)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass
class Keyed:
    """A server whose database had API keys before it started."""

    server: Server
    data_dir: Path
    keys: dict[str, str]  # user -> key
    created: subprocess.CompletedProcess[str]  # the `keys create` run for alice


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    tmp = tmp_path_factory.mktemp("keyed")
    data_dir = tmp / "data"
    created = {user: keys_cli(data_dir, "create", "--user", user) for user in ("alice", "bob")}
    created["carol"] = keys_cli(data_dir, "create", "--user", "carol")
    for result in created.values():
        assert result.returncode == 0, result.stderr
    keys = {user: result.stdout.strip() for user, result in created.items()}
    server = start_server(
        tmp, {"SSECHAT_DATA_DIR": str(data_dir), "SSECHAT_MODEL_BACKEND": "scripted"}
    )
    yield Keyed(server, data_dir, keys, created["alice"])
    stop_server(server)


@pytest.fixture(scope="module")
def proxied(servers: Any) -> Server:
    """A server behind an auth proxy that names the user in `x-user-id`."""
    server: Server = servers(model_backend="scripted", trusted_user_header="x-user-id")
    return server


# -- the local user -----------------------------------------------------------------------


def test_without_keys_everyone_is_the_local_user_and_a_bearer_token_is_ignored(
    scripted: Server,
) -> None:
    created = request(
        scripted, "POST", "/v1/conversations", json={"title": "t"}, headers=bearer("sk-made-up")
    )
    assert created.status_code == 201
    conv_id = created.json()["id"]
    for headers in (
        {},
        bearer("sk-another-made-up-token"),
        {"authorization": "Basic Zm9vOmJhcg=="},
    ):
        found = request(scripted, "GET", f"/v1/conversations/{conv_id}", headers=headers)
        assert found.status_code == 200, found.text
        assert found.json()["id"] == conv_id


# -- API keys -----------------------------------------------------------------------------


def test_keys_create_prints_the_new_key_once_on_one_line(keyed: Keyed) -> None:
    lines = keyed.created.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sk-ssechat-")
    assert len(lines[0]) > len("sk-ssechat-") + 20
    assert len(set(keyed.keys.values())) == 3


def test_keys_list_shows_prefixes_and_users_but_never_a_whole_key(keyed: Keyed) -> None:
    listed = keys_cli(keyed.data_dir, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    by_user = {row[1]: row[0] for row in rows}
    assert set(by_user) >= {"alice", "bob"}
    for user in ("alice", "bob"):
        prefix = by_user[user].rstrip("…")
        assert prefix.startswith("sk-ssechat-")
        assert keyed.keys[user].startswith(prefix)
        assert keyed.keys[user] not in listed.stdout


def test_a_valid_key_is_served_as_its_user(keyed: Keyed) -> None:
    alice = bearer(keyed.keys["alice"])
    created = request(keyed.server, "POST", "/v1/conversations", json={}, headers=alice)
    assert created.status_code == 201
    conv_id = created.json()["id"]
    assert request(keyed.server, "GET", f"/v1/conversations/{conv_id}", headers=alice).is_success
    stream = keyed.server.chat({"message": "hi"}, headers=alice)
    assert stream.status == 200
    assert stream.of("complete")[0]["text"] == "The capital of France is Paris."


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/conversations", None),
        ("POST", "/v1/conversations", {"title": "x"}),
        ("GET", "/v1/conversations/conv_x", None),
        ("POST", "/v1/chat/stream", {"message": "hi"}),
        ("GET", "/v1/runs/run_x/events", None),
        ("POST", "/v1/runs/run_x/cancel", None),
    ],
)
def test_once_a_key_exists_a_request_without_one_is_refused_with_401(
    keyed: Keyed, method: str, path: str, body: Any
) -> None:
    response = request(keyed.server, method, path, json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer sk-ssechat-not-a-real-key",
        "Bearer",
        "Token {alice}",
        "{alice}",
        "Bearer {alice}x",
    ],
)
def test_a_wrong_or_malformed_key_is_refused_with_401(keyed: Keyed, authorization: str) -> None:
    headers = {"authorization": authorization.format(alice=keyed.keys["alice"])}
    response = request(keyed.server, "GET", "/v1/conversations", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    refused = keyed.server.chat({"message": "hi"}, headers=headers)
    assert refused.status == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_refused_while_other_keys_keep_working(keyed: Keyed) -> None:
    carol = bearer(keyed.keys["carol"])
    assert request(keyed.server, "GET", "/v1/conversations", headers=carol).status_code == 200
    listed = keys_cli(keyed.data_dir, "list")
    prefix = next(
        line.split("\t")[0] for line in listed.stdout.splitlines() if line.split("\t")[1] == "carol"
    )
    revoked = keys_cli(keyed.data_dir, "revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    refused = request(keyed.server, "GET", "/v1/conversations", headers=carol)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert "carol" not in keys_cli(keyed.data_dir, "list").stdout
    alice = bearer(keyed.keys["alice"])
    assert request(keyed.server, "GET", "/v1/conversations", headers=alice).status_code == 200


def test_revoking_an_unknown_prefix_fails_and_revokes_nothing(keyed: Keyed) -> None:
    result = keys_cli(keyed.data_dir, "revoke", "sk-ssechat-nope00")
    assert result.returncode == 1
    alice = bearer(keyed.keys["alice"])
    assert request(keyed.server, "GET", "/v1/conversations", headers=alice).status_code == 200


# -- a trusted proxy header ---------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-user-id": ""}])
def test_behind_a_proxy_a_request_without_the_user_header_is_refused_with_401(
    proxied: Server, headers: dict[str, str]
) -> None:
    response = request(proxied, "GET", "/v1/conversations", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_behind_a_proxy_the_user_header_names_the_user(proxied: Server) -> None:
    a, b = {"x-user-id": f"a-{uuid.uuid4().hex}"}, {"x-user-id": f"b-{uuid.uuid4().hex}"}
    conv_id = request(proxied, "POST", "/v1/conversations", json={}, headers=a).json()["id"]
    assert request(proxied, "GET", f"/v1/conversations/{conv_id}", headers=a).status_code == 200
    assert request(proxied, "GET", f"/v1/conversations/{conv_id}", headers=b).status_code == 404
    listed = request(proxied, "GET", "/v1/conversations", headers=a).json()["data"]
    assert [c["id"] for c in listed] == [conv_id]
    assert request(proxied, "GET", "/v1/conversations", headers=b).json()["data"] == []


# -- one user never reaches another's conversations or runs -------------------------------


@dataclass
class Pair:
    server: Server
    a: dict[str, str]  # headers of the user who tries
    b: dict[str, str]  # headers of the owner


@pytest.fixture(params=["api-keys", "trusted-header"])
def pair(request: pytest.FixtureRequest, keyed: Keyed, proxied: Server) -> Pair:
    if request.param == "api-keys":
        return Pair(keyed.server, bearer(keyed.keys["alice"]), bearer(keyed.keys["bob"]))
    return Pair(
        proxied, {"x-user-id": f"a-{uuid.uuid4().hex}"}, {"x-user-id": f"b-{uuid.uuid4().hex}"}
    )


def assert_same_refusal(got: httpx.Response, made_up: httpx.Response, got_id: str) -> None:
    """`got` is refused exactly as `made_up` is: status, code, and message (but for the id)."""
    assert got.status_code == made_up.status_code == 404
    error, expected = got.json()["error"], made_up.json()["error"]
    assert error["code"] == expected["code"]
    assert error["message"].replace(got_id, "ID") == expected["message"].replace("made_up_id", "ID")


def test_another_users_conversation_cannot_be_read_renamed_or_deleted(pair: Pair) -> None:
    s = pair.server
    chat = s.chat({"message": "my secret question"}, headers=pair.b)
    conv_id = chat.of("start")[0]["conversation_id"]
    tries: list[tuple[str, dict[str, Any]]] = [
        ("GET", {}),
        ("PATCH", {"json": {"title": "pwned"}}),
        ("DELETE", {}),
    ]
    for method, kwargs in tries:
        got = request(s, method, f"/v1/conversations/{conv_id}", headers=pair.a, **kwargs)
        made_up = request(s, method, "/v1/conversations/made_up_id", headers=pair.a, **kwargs)
        assert_same_refusal(got, made_up, conv_id)
        assert made_up.json()["error"]["code"] == "conversation_not_found"

    mine = request(s, "GET", f"/v1/conversations/{conv_id}", headers=pair.b)
    assert mine.status_code == 200
    assert mine.json()["title"] == "my secret question"
    assert [m["role"] for m in mine.json()["messages"]] == ["user", "assistant"]
    renamed = request(
        s, "PATCH", f"/v1/conversations/{conv_id}", json={"title": "mine"}, headers=pair.b
    )
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "mine"
    assert request(s, "DELETE", f"/v1/conversations/{conv_id}", headers=pair.b).status_code == 204


def test_another_users_conversations_never_appear_in_a_list(pair: Pair) -> None:
    s = pair.server
    theirs = request(s, "POST", "/v1/conversations", json={"title": "b's"}, headers=pair.b)
    mine = request(s, "POST", "/v1/conversations", json={"title": "a's"}, headers=pair.a)
    a_ids = [c["id"] for c in all_conversations(s, pair.a)]
    b_ids = [c["id"] for c in all_conversations(s, pair.b)]
    assert mine.json()["id"] in a_ids
    assert theirs.json()["id"] not in a_ids
    assert theirs.json()["id"] in b_ids
    assert mine.json()["id"] not in b_ids


def all_conversations(server: Server, headers: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = request(server, "GET", "/v1/conversations", params=params, headers=headers)
        assert page.status_code == 200
        found += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the conversation list never ended")


def test_another_users_run_cannot_be_followed_resumed_or_cancelled_and_goes_on(
    pair: Pair,
) -> None:
    s = pair.server
    first = s.chat({"message": "hi", "params": SLOW}, headers=pair.b, stop_after=4)
    run_id = first.headers["x-run-id"]

    def refused(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        return request(s, method, path.format(run=run_id), headers={**pair.a, **headers})

    def made_up(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        return request(s, method, path.format(run="made_up_id"), headers={**pair.a, **headers})

    tries = [
        ("GET", "/v1/runs/{run}/events", {}),  # follow
        ("GET", "/v1/runs/{run}/events", {"last-event-id": "2"}),  # resume
        ("POST", "/v1/runs/{run}/cancel", {}),
    ]
    for method, path, headers in tries:
        assert_same_refusal(refused(method, path, headers), made_up(method, path, headers), run_id)

    rest = s.stream(
        "GET",
        f"/v1/runs/{run_id}/events",
        headers={**pair.b, "last-event-id": first.messages[-1].id},
    )
    assert rest.status == 200
    assert "error" not in rest.types
    assert rest.of("complete")[0]["text"] == SLOW_TEXT

    # and once it has ended (its owner now known from the store, not the running task)
    for method, path, headers in tries:
        assert_same_refusal(refused(method, path, headers), made_up(method, path, headers), run_id)


def test_the_owner_can_cancel_their_own_run(pair: Pair) -> None:
    s = pair.server
    first = s.chat({"message": "hi", "params": SLOW}, headers=pair.b, stop_after=4)
    run_id = first.headers["x-run-id"]
    cancelled = request(s, "POST", f"/v1/runs/{run_id}/cancel", headers=pair.b)
    assert cancelled.status_code == 200
    rest = s.stream("GET", f"/v1/runs/{run_id}/events", headers=pair.b)
    assert rest.of("error")[0]["code"] == "cancelled"


def test_revoking_the_last_key_locks_a_running_server_rather_than_opening_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "locked"
    key = keys_cli(data_dir, "create", "--user", "dora").stdout.strip()
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_DATA_DIR": str(data_dir)}
    server = start_server(tmp_path, env)
    try:
        assert httpx.get(f"{server.url}/v1/conversations", headers=bearer(key)).status_code == 200
        prefix = keys_cli(data_dir, "list").stdout.split("\t")[0]
        assert keys_cli(data_dir, "revoke", prefix).returncode == 0
        assert httpx.get(f"{server.url}/v1/conversations").status_code == 401
        assert httpx.get(f"{server.url}/v1/conversations", headers=bearer(key)).status_code == 401
    finally:
        stop_server(server)


def test_a_key_created_while_the_server_runs_is_required_within_a_second(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "keyless"
    env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_DATA_DIR": str(data_dir)}
    server = start_server(tmp_path, env)
    try:
        assert httpx.get(f"{server.url}/v1/conversations").status_code == 200  # the local user
        key = keys_cli(data_dir, "create", "--user", "erin").stdout.strip()
        time.sleep(KEYS_RECHECK_S + 0.2)
        assert httpx.get(f"{server.url}/v1/conversations").status_code == 401
        assert httpx.get(f"{server.url}/v1/conversations", headers=bearer(key)).status_code == 200
    finally:
        stop_server(server)
