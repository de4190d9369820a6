"""Bring your own pipeline: the example app that mounts ssechat, `--pipeline`, plugins from
installed packages, and what a custom pipeline gets for free (resume, cancel, persistence)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import Server, free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
TOKEN = {"authorization": "Bearer example-token"}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`uvicorn examples.custom_pipeline:app`, run from the repository root as documented."""
    tmp = tmp_path_factory.mktemp("example")
    server = start_server(
        tmp,
        {"SSECHAT_DATA_DIR": str(tmp / "data")},
        command=("-m", "uvicorn", "examples.custom_pipeline:app"),
        cwd=ROOT,
        ready="/hello",
    )
    yield server
    stop_server(server)


def test_the_host_apps_own_route_still_answers(example: Server) -> None:
    assert httpx.get(example.url + "/hello").json() == {"hello": "world"}


def test_shout_streams_the_question_in_upper_case_word_by_word(example: Server) -> None:
    body = {"message": "hello world", "pipeline": "shout"}
    stream = example.chat(body, headers=TOKEN)
    assert stream.status == 200
    assert [d["text"] for d in stream.of("delta")] == ["HELLO", " WORLD"]
    assert stream.of("complete")[0]["text"] == "HELLO WORLD"
    assert stream.of("status")[0]["stage"] == "shouting"


def test_the_host_apps_auth_dependency_guards_ssechats_routes(example: Server) -> None:
    body = {"message": "hello world", "pipeline": "shout"}
    assert example.chat(body).status == 401
    assert example.chat(body, headers={"authorization": "Bearer wrong"}).status == 401
    assert httpx.get(example.url + "/v1/conversations").status_code == 401


def test_seed_001s_route_streams_the_same_pipeline_in_its_own_format(example: Server) -> None:
    stream = example.stream(
        "POST", "/api/chat/stream", json={"message": "hello world"}, headers=TOKEN
    )
    assert stream.status == 200
    data = [m.data for m in stream.messages]
    tokens = [orjson.loads(d)["token"] for d in data if d.startswith('{"token"')]
    assert "".join(tokens) == "HELLO WORLD"
    assert data[-1] == "[DONE]"
    assert example.stream("POST", "/api/chat/stream", json={"message": "hi"}).status == 401


def test_answers_are_saved_under_the_host_apps_user(example: Server) -> None:
    stream = example.chat({"message": "save me", "pipeline": "shout"}, headers=TOKEN)
    conversation_id = stream.of("start")[0]["conversation_id"]
    found = httpx.get(f"{example.url}/v1/conversations/{conversation_id}", headers=TOKEN).json()
    assert [m["content"] for m in found["messages"]] == ["save me", "SAVE ME"]
    assert found["messages"][1]["pipeline"] == "shout"


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("custom")
    mark = tmp / "mark"
    server = start_server(
        tmp,
        {"SSECHAT_MODEL_BACKEND": "scripted", "MARK_FILE": str(mark)},
        args=(
            "--pipeline", "tests.pipelines:slow_words",
            "--pipeline", "explode=tests.pipelines:broken",
            "--pipeline", "tests.pipelines:wrong_type",
            "--pipeline", "tests.graphs:research",
        ),
    )  # fmt: skip
    yield server, mark
    stop_server(server)


WORDS = " ".join(f"w{i}" for i in range(30))


def test_a_custom_pipeline_resumes_with_last_event_id(custom: tuple[Server, Path]) -> None:
    server, _ = custom
    first = server.chat({"message": WORDS, "pipeline": "slow_words"}, stop_after=6)
    seen = [m for m in first.messages if m.event != "message"]
    rest = server.stream(
        "GET",
        f"/v1/runs/{first.headers['x-run-id']}/events",
        headers={"last-event-id": seen[-1].id},
    )
    ids = [int(m.id) for m in seen] + [int(m.id) for m in rest.messages if m.event != "message"]
    assert ids == list(range(1, len(ids) + 1))
    assert rest.of("complete")[0]["text"] == WORDS
    assert first.of("sources")[0]["sources"][0]["text"] == WORDS


def test_cancel_reaches_the_generator_its_finally_runs_and_the_partial_answer_is_saved(
    custom: tuple[Server, Path],
) -> None:
    server, mark = custom
    mark.unlink(missing_ok=True)
    first = server.chat({"message": WORDS, "pipeline": "slow_words"}, stop_after=6)
    run_id = first.headers["x-run-id"]
    assert httpx.post(f"{server.url}/v1/runs/{run_id}/cancel").status_code == 200
    rest = server.stream("GET", f"/v1/runs/{run_id}/events")
    assert rest.of("error")[0]["code"] == "cancelled"
    deadline = time.monotonic() + 5
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.read_text() == f"finally ran for {run_id}"
    conversation_id = first.of("start")[0]["conversation_id"]
    saved = httpx.get(f"{server.url}/v1/conversations/{conversation_id}").json()["messages"][1]
    streamed = "".join(d["text"] for d in rest.of("delta"))  # rest replays from the start
    assert saved["status"] == "cancelled"
    assert saved["content"] == streamed
    assert WORDS.startswith(streamed)


def test_a_pipeline_that_raises_ends_with_pipeline_error_and_keeps_its_partial_answer(
    custom: tuple[Server, Path],
) -> None:
    server, _ = custom
    stream = server.chat({"message": "hi", "pipeline": "explode"})
    error = stream.of("error")[0]
    assert error["code"] == "pipeline_error"
    assert "explode" in error["message"]
    assert "secret internal detail" not in error["message"]
    assert "secret internal detail" in server.log.read_text()  # the trace goes to the log
    conversation_id = stream.of("start")[0]["conversation_id"]
    saved = httpx.get(f"{server.url}/v1/conversations/{conversation_id}").json()["messages"][1]
    assert (saved["status"], saved["content"]) == ("error", "partial ")


def test_a_pipeline_yielding_a_non_event_gets_an_error_naming_it(
    custom: tuple[Server, Path],
) -> None:
    server, _ = custom
    error = server.chat({"message": "hi", "pipeline": "wrong_type"}).of("error")[0]
    assert error["code"] == "pipeline_error"
    assert "'wrong_type'" in error["message"]
    assert "dict" in error["message"]


def test_a_langgraph_graph_streams_through_a_real_server(custom: tuple[Server, Path]) -> None:
    server, _ = custom
    stream = server.chat({"message": "Do runs survive?", "pipeline": "research"})
    assert [s["stage"] for s in stream.of("status")] == ["retrieve", "retrieving", "answer"]
    assert stream.of("sources")[0]["sources"][0]["title"] == "Runs"
    assert stream.of("complete")[0]["text"] == "The capital of France is Paris."
    assert len(stream.of("delta")) > 1


def write_plugin(where: Path, module: str, body: str) -> None:
    """An installed distribution as importlib.metadata finds it: a module and a dist-info
    with entry points, on the path."""
    (where / f"{module}.py").write_text(textwrap.dedent(body))
    info = where / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ssechat.pipelines]\nreverse = {module}:reverse\n")


def ssechat_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(path), "SSECHAT_DATA_DIR": str(path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "ssechat", *args], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


GOOD_PLUGIN = """
    from ssechat import Context

    async def reverse(ctx: Context):
        yield ctx.question[::-1]
"""


def test_an_installed_plugin_is_listed_and_served(tmp_path: Path) -> None:
    write_plugin(tmp_path, "reverser", GOOD_PLUGIN)
    listed = ssechat_cli(tmp_path, "plugins")
    assert listed.returncode == 0, listed.stderr
    assert "pipeline\treverse\treverser:reverse\t(reverser)\tok" in listed.stdout
    server = start_server(
        tmp_path, {"PYTHONPATH": str(tmp_path), "SSECHAT_MODEL_BACKEND": "scripted"}
    )
    try:
        stream = server.chat({"message": "stressed", "pipeline": "reverse"})
        assert stream.of("complete")[0]["text"] == "desserts"
    finally:
        stop_server(server)


def test_a_plugin_that_fails_to_import_stops_start_up_naming_it(tmp_path: Path) -> None:
    write_plugin(tmp_path, "brokenplugin", "import not_a_module_anywhere\n")
    listed = ssechat_cli(tmp_path, "plugins")
    assert listed.returncode == 1
    assert "FAILED" in listed.stdout
    assert "brokenplugin" in listed.stdout
    served = ssechat_cli(tmp_path, "serve", "--port", str(free_port()))
    assert served.returncode == 2
    assert "plugin 'reverse' from brokenplugin failed to load" in served.stderr
    assert "not_a_module_anywhere" in served.stderr
    assert "Traceback" not in served.stderr


def test_a_bad_pipeline_spec_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    served = ssechat_cli(tmp_path, "serve", "--port", str(free_port()), "--pipeline", "nocolon")
    assert served.returncode == 2
    assert "expected module:function" in served.stderr
