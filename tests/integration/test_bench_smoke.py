"""The benchmark harness (bench/) end to end, tiny: `python -m bench run --quick`.

No timing is asserted — timings belong to the machine, not to the code. What is checked is
that one run measures every server in every scenario, that every count adds up (each server
sent exactly the events asked for and the load generator received all of them), and that the
report it writes has every table filled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def streaming(results: dict[str, Any]) -> set[str]:
    """The streaming servers the run measured (F only where FastAPI has `fastapi.sse`)."""
    return set(results["plan"]["servers"]) - {"T"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench")
    saved = out / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--quick",
            "--out",
            str(out),
            "--results",
            str(saved),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads(saved.read_text()), (out / "benchmarks.md").read_text(), out


def test_throughput_measures_every_server_at_every_level(quick: Any) -> None:
    results, _, _ = quick
    levels = results["plan"]["throughput_streams"]
    assert list(results["throughput"]) == [str(n) for n in levels]
    for row in results["throughput"].values():
        assert set(row) == {"T", *streaming(results)}
        for name, cell in row.items():
            assert cell["events_per_s"] > 0
            assert cell["loadgen_cpu"] > 0
            assert name == "T" or cell["server_cpu"] > 0  # T barely works: it may round to 0


def test_throughput_is_the_median_of_rounds_measured_in_turn(quick: Any) -> None:
    results, _, _ = quick
    rounds = results["plan"]["throughput_rounds"]
    assert rounds >= 2
    for row in results["throughput"].values():
        for cell in row.values():
            measured = sorted(c["events_per_s"] for c in cell["rounds"])
            assert len(measured) == rounds
            assert cell["events_per_s"] == measured[(rounds - 1) // 2]


def test_throughput_events_received_equal_events_sent(quick: Any) -> None:
    results, _, _ = quick
    for row in results["throughput"].values():
        for cell in (c for median in row.values() for c in median["rounds"]):
            assert cell["responses"] > 0
            assert cell["bad_responses"] == 0
            assert cell["aborted_in_flight"] == 0
            assert cell["events_received"] == cell["events_sent"]
            assert cell["events_sent"] == cell["responses"] * cell["events_per_response"]


def test_throughput_is_measured_once_every_stream_streams(quick: Any) -> None:
    results, report, _ = quick
    for row in results["throughput"].values():
        for cell in (c for median in row.values() for c in median["rounds"]):
            assert cell["streaming"] == cell["streams"]
            assert 0 < cell["ramp_seconds"] < 60
    assert "all streaming after" in report


def test_paced_streams_deliver_every_event_with_a_latency(quick: Any) -> None:
    results, _, _ = quick
    plan = results["plan"]
    assert set(results["latency"]) == streaming(results)
    for cell in results["latency"].values():
        assert cell["responses"] == plan["latency_streams"]
        assert cell["bad_responses"] == 0
        assert cell["events_received"] == cell["events_sent"]
        assert cell["samples"] > 0
        ms = cell["latency_ms"]
        assert 0 < ms["p50"] <= ms["p99"] <= ms["p99.9"] <= ms["max"]


def test_first_byte_comes_before_first_event(quick: Any) -> None:
    results, _, _ = quick
    assert set(results["first_byte"]) == streaming(results)
    for cell in results["first_byte"].values():
        assert cell["bad_responses"] == 0
        assert 0 < cell["first_byte_ms"]["p50"] <= cell["first_event_ms"]["p50"]


def test_every_idle_stream_is_held_and_kept_alive(quick: Any) -> None:
    results, _, _ = quick
    levels = results["plan"]["idle_levels"]
    assert set(results["idle"]) == {*streaming(results), "Sf"}  # Sf: ssechat's followers
    for cell in results["idle"].values():
        assert cell["held"] == levels[-1]
        assert cell["failed"] == 0
        assert cell["min_heard_in_hold"] >= 1
        assert [p["streams"] for p in cell["rss"]] == [0, *levels]
        assert all(p["rss"] > 0 for p in cell["rss"])


def test_resume_replays_exactly_the_missed_events(quick: Any) -> None:
    results, _, _ = quick
    cell = results["resume"]["S"]
    assert cell["responses"] > 0
    assert cell["bad_responses"] == 0
    assert 0 < cell["first_byte_ms"]["p50"] <= cell["caught_up_ms"]["p50"]


def test_resume_is_measured_beside_its_floor_the_same_events_in_one_write(quick: Any) -> None:
    results, report, _ = quick
    floor, plan = results["resume"]["T"], results["plan"]
    assert floor["events_per_response"] == plan["resume_missed"]
    assert floor["samples"] == results["resume"]["S"]["samples"]
    assert floor["bad_responses"] == 0  # each response had exactly that many events
    assert 0 < floor["response_ms"]["p50"] <= floor["response_ms"]["p99"]
    assert "ssechat ÷ T" in report


def test_tcp_nodelay_is_read_from_an_accepted_socket_in_every_mode(quick: Any) -> None:
    results, _, _ = quick
    modes = results["nodelay"]
    assert len(modes) == 4
    assert all(m["accepted"] >= 1 and m["response"].startswith("HTTP/1.1 200") for m in modes)


def test_the_report_fills_every_table_and_names_how_to_reproduce(quick: Any) -> None:
    results, report, _ = quick
    for heading in (
        "## Targets",
        "## Throughput at saturation",
        "## Added latency per event at a paced load",
        "## Request to first byte",
        "## Idle streams",
        "## Resume with Last-Event-ID",
        "## TCP_NODELAY",
    ):
        assert heading in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    assert rows
    assert not [row for row in rows if "—" in row]  # "—" marks a missing figure
    assert "python -m bench run --quick" in report
    assert results["machine"]["cpu"] in report
    for base in streaming(results) - {"S"}:
        assert f"ssechat ÷ {base}" in report


def test_the_report_shows_its_plots(quick: Any) -> None:
    _, report, out = quick
    pytest.importorskip("matplotlib")  # the plots need the bench extra; the tables do not
    for image in ("bench-throughput.png", "bench-latency.png", "bench-idle-memory.png"):
        assert (out / image).stat().st_size > 0
        assert f"]({image})" in report
