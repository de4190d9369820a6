"""`ssechat ask` prints the answer as it streams from a running server."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import Server


def run_ask(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssechat", "ask", "--url", server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ask_prints_the_whole_answer(scripted: Server) -> None:
    result = run_ask(scripted, "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The capital of France is Paris.\n"


def test_ask_reports_a_refused_request_and_fails(scripted: Server) -> None:
    result = run_ask(scripted, "hi", "--pipeline", "nope")
    assert result.returncode == 1
    assert "unknown_pipeline" in result.stderr
