"""What the test_compat_* files share: servers whose compatible routes all run the `chat`
pipeline on the scripted model (so every answer is `TEXT`), Node to run the clients of tests/js,
and seed 000's own Python client."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server

JS_DIR = Path(__file__).resolve().parents[1] / "js"
DIALECTS = ("vanna", "keyed", "typed", "message", "delta", "openai", "ai-sdk")
PIPELINES = json.dumps(dict.fromkeys(DIALECTS, "chat"))
TEXT = "Seed clients keep working, because every dialect renders the same run of events."
WORDS = TEXT.split(" ")


def compat_env(**extra: str) -> dict[str, str]:
    return {
        "model_backend": "scripted",
        "scripted_text": TEXT,
        "scripted_delay": "0.03",  # about half a second per answer: time to cancel one
        "compat_pipelines": PIPELINES,
        **extra,
    }


@pytest.fixture(scope="session")
def compat(servers: Any) -> Server:
    server: Server = servers(**compat_env())
    return server


@pytest.fixture(scope="session")
def failing(servers: Any) -> Server:
    """Every answer fails after three words (a model error); EventSources retry fast."""
    server: Server = servers(**compat_env(scripted_fail_after="3", retry_ms="200"))
    return server


def node(script: str, *args: str, timeout: float = 60) -> Any:
    """Run a script of tests/js with Node; its last stdout line, parsed as JSON."""
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node is not installed (the JavaScript clients run on Node)")
    if not (JS_DIR / "node_modules" / "ai").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `npm ci` in tests/js")
    done = subprocess.run(
        [exe, str(JS_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def seed_000_requests_loop(base_url: str) -> None:
    """Seed 000's Python client, which prints the answer as it streams and then in full."""
    requests = pytest.importorskip("requests")  # the seed's own client library

    # ---- shared/seeds/000, "### Python", verbatim but for the base URL ----
    response = requests.post(
        f"{base_url}/api/vanna/v2/chat_sse",
        json={"message": "Show me all tables", "headers": {"x-user-id": "user123"}},
        stream=True,
    )

    for line in response.iter_lines():
        if line:
            line = line.decode("utf-8")
            if line.startswith("data: "):
                data = json.loads(line[6:])

                if data["event"] == "chunk":
                    print(data["text"], end="", flush=True)
                elif data["event"] == "complete":
                    print(f"\n\nFull answer: {data['answer']}")
    # ---- end of seed 000 ----
