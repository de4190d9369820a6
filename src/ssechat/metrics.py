"""Prometheus metrics, one registry per app (no process globals, so two apps in one process —
tests, or ssechat mounted twice — do not share or collide).

Counted where the thing happens: runs in `RunManager`, events as a subscription sends them
(one increment per batch, not per event: this is the hot path).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_runs = Gauge(
            "ssechat_active_runs", "Runs executing now.", registry=self.registry
        )
        self.active_subscribers = Gauge(
            "ssechat_active_subscribers", "Responses following a run now.", registry=self.registry
        )
        self.runs = Counter(
            "ssechat_runs", "Runs ended, by pipeline and outcome.", ["pipeline", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "ssechat_errors", "Runs that ended with an error event, by code.", ["code"],
            registry=self.registry,
        )  # fmt: skip
        self.events_sent = Counter(
            "ssechat_events_sent", "Events written to subscribers.", registry=self.registry
        )
        self.ttft = Histogram(
            "ssechat_time_to_first_token_seconds",
            "From a run's start to its first answer text.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
