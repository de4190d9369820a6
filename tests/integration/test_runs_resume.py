"""Runs outlive connections: resume with Last-Event-ID, several subscribers, cancel, grace."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Server

TEXT = " ".join(f"word{i}" for i in range(40))
SLOW = {"text": TEXT, "delay": 0.02}


def events(stream: Any) -> list[Any]:
    return [m for m in stream.messages if m.event != "message"]


def test_a_dropped_stream_resumes_with_last_event_id_without_loss_or_repeat(
    scripted: Server,
) -> None:
    first = scripted.chat({"message": "hi", "params": SLOW}, stop_after=8)
    run_id = first.headers["x-run-id"]
    seen = events(first)
    rest = scripted.stream(
        "GET", f"/v1/runs/{run_id}/events", headers={"last-event-id": seen[-1].id}
    )
    whole = seen + events(rest)
    assert [int(m.id) for m in whole] == list(range(1, len(whole) + 1))
    deltas = [orjson.loads(m.data)["text"] for m in whole if m.event == "delta"]
    assert "".join(deltas) == TEXT
    assert rest.of("complete")[0]["text"] == TEXT


def test_last_event_id_can_be_a_query_parameter_for_clients_without_headers(
    scripted: Server,
) -> None:
    first = scripted.chat({"message": "hi", "params": SLOW}, stop_after=5)
    run_id = first.headers["x-run-id"]
    rest = scripted.stream("GET", f"/v1/runs/{run_id}/events?last_event_id=5")
    assert int(events(rest)[0].id) == 6


def test_an_ended_run_replays_to_the_end_and_closes(scripted: Server) -> None:
    done = scripted.chat({"message": "hi", "params": {"text": TEXT}})
    replay = scripted.stream("GET", f"/v1/runs/{done.headers['x-run-id']}/events")
    assert [m.data for m in events(replay)] == [m.data for m in events(done)]


def test_a_long_run_replays_the_same_from_any_point_and_in_any_dialect(scripted: Server) -> None:
    # More events than one piece of the in-memory log (64), which keeps them as canonical
    # messages: a resume cuts them at the seq asked for; another dialect parses them back.
    text = " ".join(f"w{i}" for i in range(150))
    first = scripted.chat({"message": "hi", "params": {"text": text, "delay": 0.01}}, stop_after=2)
    run_id = first.headers["x-run-id"]
    path = f"/v1/runs/{run_id}/events"
    live_typed = scripted.stream("GET", f"{path}?format=typed")  # follows the run live
    done = events(scripted.stream("GET", path))
    assert "".join(orjson.loads(m.data)["text"] for m in done if m.event == "delta") == text
    for after in (1, 63, 64, 65, 100, 128, len(done) - 2):
        rest = scripted.stream("GET", path, headers={"last-event-id": str(after)})
        assert [(m.id, m.event, m.data) for m in events(rest)] == [
            (m.id, m.event, m.data) for m in done[after:]
        ]
    for after in (len(done), len(done) + 10):  # nothing left: an EventSource stops on 204
        assert scripted.stream("GET", path, headers={"last-event-id": str(after)}).status == 204
    replayed_typed = scripted.stream("GET", f"{path}?format=typed")
    assert replayed_typed.messages == live_typed.messages
    assert len(live_typed.messages) > 150


def test_a_second_subscriber_sees_the_same_events(scripted: Server) -> None:
    first = scripted.chat({"message": "hi", "params": SLOW}, stop_after=3)
    run_id = first.headers["x-run-id"]
    tab_a = scripted.stream("GET", f"/v1/runs/{run_id}/events")
    tab_b = scripted.stream("GET", f"/v1/runs/{run_id}/events", headers={"last-event-id": "2"})
    assert [m.id for m in events(tab_a)][2:] == [m.id for m in events(tab_b)]
    assert tab_a.of("complete") == tab_b.of("complete")


def test_an_unknown_run_is_a_404_json(scripted: Server) -> None:
    stream = scripted.stream("GET", "/v1/runs/run_nope/events")
    assert stream.status == 404
    assert stream.json()["error"]["code"] == "run_not_found"


def test_a_malformed_last_event_id_is_a_400(scripted: Server) -> None:
    done = scripted.chat({"message": "hi"})
    stream = scripted.stream(
        "GET", f"/v1/runs/{done.headers['x-run-id']}/events", headers={"last-event-id": "abc"}
    )
    assert stream.status == 400
    assert stream.json()["error"]["code"] == "invalid_last_event_id"


def test_cancel_stops_the_run_and_every_subscriber_gets_a_cancelled_error(
    scripted: Server,
) -> None:
    first = scripted.chat({"message": "hi", "params": {"text": TEXT, "delay": 0.1}}, stop_after=4)
    run_id = first.headers["x-run-id"]
    with httpx.Client(base_url=scripted.url) as client:
        assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    rest = scripted.stream("GET", f"/v1/runs/{run_id}/events")
    assert rest.types[-1] == "error"
    assert rest.of("error")[0]["code"] == "cancelled"
    assert "complete" not in rest.types
    assert len(rest.of("delta")) < len(TEXT.split())
    with httpx.Client(base_url=scripted.url) as client:
        again = client.post(f"/v1/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_finished"


@pytest.fixture(scope="module")
def no_grace(servers: Any) -> Server:
    server: Server = servers(model_backend="scripted", grace_period="0")
    return server


def test_a_run_whose_last_client_leaves_is_interrupted_after_the_grace_period(
    no_grace: Server,
) -> None:
    first = no_grace.chat({"message": "hi", "params": {"text": TEXT, "delay": 0.1}}, stop_after=4)
    run_id = first.headers["x-run-id"]
    time.sleep(0.5)  # the server notices the hang-up and cancels (grace 0)
    rest = no_grace.stream("GET", f"/v1/runs/{run_id}/events")
    assert rest.of("error")[0]["code"] == "interrupted"
    assert len(rest.of("delta")) < 15


def test_a_client_that_leaves_an_idle_stream_is_noticed_within_a_keepalive(
    servers: Any,
) -> None:
    # The model waits 30 s between words, so no write reveals the hang-up: only the keepalive
    # timer's check of the connection can (every quarter interval).
    server: Server = servers(model_backend="scripted", grace_period="0", keepalive_interval="0.4")
    first = server.chat({"message": "hi", "params": {"text": TEXT, "delay": 30}}, stop_after=2)
    time.sleep(1.0)
    rest = server.stream("GET", f"/v1/runs/{first.headers['x-run-id']}/events")
    assert rest.of("error")[0]["code"] == "interrupted"
    assert rest.of("delta") == []


def test_within_the_grace_period_a_run_goes_on_without_clients(scripted: Server) -> None:
    first = scripted.chat({"message": "hi", "params": SLOW}, stop_after=4)
    rest = scripted.stream("GET", f"/v1/runs/{first.headers['x-run-id']}/events")
    assert rest.of("complete")[0]["text"] == TEXT
