"""The compatible routes as routes, on real servers: refusals before a stream, `?format=`, the
pipeline setting, and API keys for the clients that send one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from ssechat.api.compat import pipeline_for
from ssechat.config import Settings
from tests.conftest import Server, start_server, stop_server
from tests.integration.conftest import TEXT, compat_env

UI_ASK = [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]

# method, path, a body without the question
ROUTES = [
    ("POST", "/api/vanna/v2/chat_sse", {"headers": {}}),
    ("POST", "/api/chat/stream", {"session_id": "s"}),
    ("POST", "/chat/stream", {"session_id": "s"}),
    ("GET", "/api/chat/stream", None),
    ("POST", "/api/chat/message", {}),
    ("POST", "/chat/1/stream", {"model": "mistral"}),
    ("POST", "/api/v1/chat/stream", {"conversation_id": "c"}),
    ("POST", "/api/chat", {"id": "c", "messages": []}),
]
IDS = [f"{method} {path}" for method, path, _ in ROUTES]


def send(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.request(method, path, **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=IDS)
def test_a_body_without_the_question_is_refused_with_400_before_any_stream(
    compat: Server, method: str, path: str, body: Any
) -> None:
    refused = send(compat, method, path, json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=IDS)
def test_an_unknown_format_is_refused_with_400_before_any_stream(
    compat: Server, method: str, path: str, body: Any
) -> None:
    refused = send(compat, method, f"{path}?format=nope&message=hi", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unknown_format"


def test_an_empty_question_is_refused_as_on_the_canonical_route(compat: Server) -> None:
    refused = send(compat, "POST", "/api/chat/stream", json={"message": "   "})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "empty_message")


def test_format_streams_a_seed_route_in_another_dialect(compat: Server) -> None:
    canonical = compat.stream("POST", "/chat/stream?format=ssechat", json={"message": "hi"})
    assert canonical.types[0] == "start"
    assert canonical.of("complete")[0]["text"] == TEXT
    chunks = compat.stream("POST", "/api/v1/chat/stream?format=openai", json={"text": "hi"})
    deltas = [json.loads(m.data) for m in chunks.messages if m.data != "[DONE]"]
    assert "".join(d["choices"][0]["delta"].get("content", "") for d in deltas) == TEXT


def test_the_canonical_routes_speak_every_dialect(compat: Server) -> None:
    keyed = compat.chat({"message": "hi"}, params={"format": "keyed"})
    tokens = [json.loads(m.data).get("token", "") for m in keyed.messages if m.data != "[DONE]"]
    assert "".join(tokens) == TEXT
    run_id = keyed.headers["x-run-id"]
    # An EventSource resuming the run in seed 002's dialect: ids are the run's seq here.
    replay = compat.stream(
        "GET", f"/v1/runs/{run_id}/events?format=message", headers={"last-event-id": "2"}
    )
    assert replay.messages[0].id == "3"
    assert replay.messages[-1].event == "done"


def test_a_seed_body_names_a_model_this_server_serves_or_is_answered_by_it(
    compat: Server,
) -> None:
    for model in ("scripted", "mistral"):
        stream = compat.stream("POST", "/chat/1/stream", json={"question": "hi", "model": model})
        assert json.loads(stream.messages[0].data)["model"] == "scripted"


def test_a_route_is_answered_by_the_pipeline_its_setting_names(servers: Any) -> None:
    misconfigured: Server = servers(
        **{**compat_env(), "compat_pipelines": '{"keyed": "no-such-pipeline"}'}
    )
    refused = send(misconfigured, "POST", "/chat/stream", json={"message": "hi"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unknown_pipeline"
    assert "no-such-pipeline" in refused.json()["error"]["message"]
    # Dialects the setting leaves out keep their default: `message` is `chat`.
    assert misconfigured.stream("GET", "/api/chat/stream?message=hi").status == 200


def test_the_pipeline_setting_defaults_seed_by_seed() -> None:
    defaults = Settings()
    assert {d: pipeline_for(defaults, d) for d in ("vanna", "keyed", "typed")} == {
        "vanna": "sql",
        "keyed": "rag",
        "typed": "rag",
    }
    assert {d: pipeline_for(defaults, d) for d in ("message", "delta", "openai", "ai-sdk")} == {
        "message": "chat",
        "delta": "chat",
        "openai": "chat",
        "ai-sdk": "chat",
    }
    partial = Settings(compat_pipelines={"vanna": "chat"})
    assert (pipeline_for(partial, "vanna"), pipeline_for(partial, "keyed")) == ("chat", "rag")


# -- with API keys -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server whose database had an API key (for alice) before it started."""
    tmp = tmp_path_factory.mktemp("compat-keys")
    data_dir = tmp / "data"
    command = ["keys", "create", "--user", "alice", "--data-dir", str(data_dir)]
    created = subprocess.run(
        [sys.executable, "-m", "ssechat", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    env = {f"SSECHAT_{k.upper()}": v for k, v in compat_env().items()}
    server = start_server(tmp, {**env, "SSECHAT_DATA_DIR": str(data_dir)})
    yield server, created.stdout.strip()
    stop_server(server)


def test_the_openai_sdk_with_a_key_is_served_and_without_one_is_refused_in_openais_terms(
    keyed: tuple[Server, str],
) -> None:
    server, key = keyed
    ask = [{"role": "user", "content": "hi"}]
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key) as client:
        completion = client.chat.completions.create(model="m", messages=ask)
    assert completion.choices[0].message.content == TEXT
    with (
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong") as client,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        client.models.list()
    assert refused.value.code == "unauthorized"
    assert refused.value.type == "invalid_request_error"


def test_seed_004s_bearer_token_is_the_api_key_once_keys_exist(keyed: tuple[Server, str]) -> None:
    server, key = keyed
    body = {"text": "Hello!"}
    refused = send(server, "POST", "/api/v1/chat/stream", json=body, headers=bearer("YOUR_TOKEN"))
    assert refused.status_code == 401
    served = server.stream("POST", "/api/v1/chat/stream", json=body, headers=bearer(key))
    assert served.messages[0].event == "snapshot"
    assert json.loads(served.messages[-1].data) == {"delta": "", "done": True}


def test_seed_000s_body_user_is_ignored_once_keys_exist(keyed: tuple[Server, str]) -> None:
    server, _ = keyed
    body = {"message": "hi", "headers": {"x-user-id": "alice"}, "user_id": "alice"}
    refused = send(server, "POST", "/api/vanna/v2/chat_sse", json=body)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
