"""The report's plots (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

from bench.report import per_cpu, rounds_of

COLORS = {
    "T": "#bbbbbb",
    "R": "#555555",
    "A": "#1f77b4",
    "B": "#ff7f0e",
    "F": "#9467bd",
    "S": "#2ca02c",
    "Sf": "#98df8a",
}
NAMES = {
    "T": "T",
    "R": "R",
    "A": "A",
    "B": "B",
    "F": "F",
    "S": "ssechat",
    "Sf": "ssechat followers",
}


def _bars(
    ax: Any,
    groups: list[str],
    series: dict[str, list[float]],
    ylabel: str,
    log: bool = False,
    ranges: dict[str, list[tuple[float, float]]] | None = None,
) -> None:
    """Grouped bars; `ranges` (lowest, highest) draws each bar's spread as an error bar."""
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        spread = (ranges or {}).get(name)
        yerr = None
        if spread:
            yerr = [
                [v - lo for v, (lo, _) in zip(values, spread, strict=True)],
                [hi - v for v, (_, hi) in zip(values, spread, strict=True)],
            ]
        ax.bar(xs, values, width, label=NAMES[name], color=COLORS[name], yerr=yerr, capsize=2)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")


def throughput(results: dict[str, Any], path: Path) -> None:
    table = results["throughput"]
    levels = list(table)
    servers = list(next(iter(table.values())))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in (
        (axes[0], "events_per_s", "events/s"),
        (axes[1], "per_cpu", "events per server CPU-second"),
    ):
        shown = [s for s in servers if s != "T" or ax is axes[0]]
        series = {s: [_per(table[lv][s], key) for lv in levels] for s in shown}
        ranges = {s: [_range(table[lv][s], key) for lv in levels] for s in shown}
        _bars(ax, [f"{int(lv):,} streams" for lv in levels], series, label, ranges=ranges)
    axes[0].set_title("Throughput at saturation (median round; whiskers: range)")
    axes[1].set_title("…per CPU-second of the server (noise-robust)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _per(cell: dict[str, Any], key: str) -> float:
    """A throughput cell's figure: events/s of its median round, or its median per CPU."""
    if key == "per_cpu":
        return per_cpu(cell) or 0.0
    return float(cell[key])


def _range(cell: dict[str, Any], key: str) -> tuple[float, float]:
    """The lowest and highest of a figure over the cell's rounds."""
    values = [_per({**c, "rounds": [c]}, key) for c in rounds_of(cell)]
    return min(values), max(values)


def latency(results: dict[str, Any], path: Path) -> None:
    table = results["latency"]
    points = ["p50", "p99", "p99.9"]
    series = {s: [table[s]["latency_ms"].get(p, 0.0) for p in points] for s in table}
    fig, ax = plt.subplots(figsize=(7, 4))
    _bars(ax, points, series, "ms (log scale)", log=True)
    plan = results["plan"]
    ax.set_title(
        f"Added latency per event, {plan['latency_streams']:,} streams × "
        f"{plan['latency_rate']:g} events/s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def idle(results: dict[str, Any], path: Path) -> None:
    table = results["idle"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for s, cell in table.items():
        xs = [p["streams"] for p in cell["rss"]]
        ys = [p["rss"] / 2**20 for p in cell["rss"]]
        ax.plot(xs, ys, marker="o", label=NAMES[s], color=COLORS[s])
    ax.set_xlabel("idle streams held (with keepalive)")
    ax.set_ylabel("server RSS, MiB")
    ax.set_title("Memory of idle streams")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def first_byte(results: dict[str, Any], path: Path) -> None:
    table = results["first_byte"]
    keys = [("first_byte_ms", "first byte"), ("first_event_ms", "first event")]
    groups = [f"{label} {p}" for _, label in keys for p in ("p50", "p99")]
    series = {s: [table[s][k].get(p, 0.0) for k, _ in keys for p in ("p50", "p99")] for s in table}
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, groups, series, "ms (log scale)", log=True)
    ax.set_title("Request to first byte / first event, one request at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOTS = {
    "bench-throughput.png": ("throughput", throughput),
    "bench-latency.png": ("latency", latency),
    "bench-idle-memory.png": ("idle", idle),
    "bench-first-byte.png": ("first_byte", first_byte),
}


def write_all(results: dict[str, Any], out: Path) -> list[str]:
    """Plot every scenario the run measured; the file names written."""
    written = []
    for name, (scenario, plot) in PLOTS.items():
        if results.get(scenario):
            plot(results, out / name)
            written.append(name)
    return written
