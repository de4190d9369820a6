"""docs/benchmarks.md from one run's results: tables, ratios, targets, machine, versions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
BASES = ("A", "B", "F", "R")
NAME = {
    "T": "T",
    "R": "R",
    "A": "A",
    "B": "B",
    "F": "F",
    "S": "**ssechat**",
    "Sf": "**ssechat** followers",
}
KIB = 1024


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "—"
    return f"{ours / theirs:.2f}×"


def rounds_of(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """A throughput cell's rounds (results saved before rounds have one: the cell)."""
    return cell.get("rounds") or [cell]


def median(items: Sequence[T], key: Callable[[T], float]) -> T:
    """The item with the median key; of an even count, the lower of the middle two. The round
    that stands for a throughput cell (`runner.median_round`), and its per-CPU figure."""
    return sorted(items, key=key)[(len(items) - 1) // 2]


def per_cpu(cell: dict[str, Any]) -> float | None:
    """Events per CPU-second of the server: the median of the cell's rounds."""
    values = [c["events_per_s"] / c["server_cpu"] for c in rounds_of(cell) if c.get("server_cpu")]
    return median(values, float) if values else None


def _spread(cell: dict[str, Any]) -> str:
    """The median events/s with the range of the rounds, when there are several."""
    values = [c["events_per_s"] for c in rounds_of(cell)]
    if len(values) == 1:
        return _num(cell["events_per_s"])
    return f"{_num(cell['events_per_s'])} ({_num(min(values))}–{_num(max(values))})"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [*out, ""]


def _bases(table: dict[str, Any]) -> list[str]:
    return [b for b in BASES if b in table]


# -- sections -----------------------------------------------------------------------------


def _throughput(r: dict[str, Any]) -> list[str]:
    table = r["throughput"]
    if not table:
        return []
    servers = list(next(iter(table.values())))
    n = r["plan"]["throughput_events"]
    rounds = r["plan"].get("throughput_rounds", 1)
    lines = [
        "## Throughput at saturation",
        "",
        f"Each stream asks for {n:,}-event responses back to back on a keep-alive connection;",
        "events/s counts the `delta` events received in the measured window "
        f"({r['plan']['throughput_measure']:g} s, opened {r['plan']['throughput_warmup']:g} s "
        "after every stream has had its first event: how long that took is in the table of "
        f"checks below). Every server is measured in {rounds} rounds, each round in a rotated "
        "order, so that a fast or slow minute of the machine does not fall to one server; a "
        "cell is the median round, with the range of the rounds in brackets. Ratios are "
        "ssechat's median ÷ the baseline's (higher is better).",
        "",
    ]
    has_s = "S" in servers
    bases = [b for b in BASES if b in servers] if has_s else []
    streaming = [s for s in servers if s != "T"]  # T's own CPU use is next to nothing
    for title, metric, shown, cell_text in (
        ("events/s (wall clock)", lambda c: c["events_per_s"], servers, _spread),
        (
            "events per CPU-second of the server (robust to a shared machine)",
            per_cpu,
            streaming,
            lambda c: _num(per_cpu(c)),
        ),
    ):
        lines += [f"**{title}**", ""]
        head = ["streams", *[NAME[s] for s in shown], *[f"ssechat ÷ {b}" for b in bases]]
        rows = []
        for level, row in table.items():
            values = {s: metric(row[s]) for s in shown}
            rows.append(
                [
                    f"{int(level):,}",
                    *[cell_text(row[s]) for s in shown],
                    *[_ratio(values["S"], values[b]) for b in bases],
                ]
            )
        lines += _table(head, rows)
    lines += [
        "**CPU use in the median round's window** (server on CPU 0 / load generator on CPU 1 / "
        "anything else on the machine, in CPUs: the last is near 0% when nothing disturbed the "
        "window)",
        "",
    ]
    head = ["streams", *[NAME[s] for s in servers]]
    rows = [
        [
            f"{int(level):,}",
            *[
                f"{row[s]['server_cpu']:.0%} / {row[s]['loadgen_cpu']:.0%} / "
                f"{row[s].get('other_cpu', 0):.0%}"
                for s in servers
            ],
        ]
        for level, row in table.items()
    ]
    lines += _table(head, rows)
    lines += [
        "**Checks** (all rounds): responses completed, events received == events sent, and "
        "the longest wait for every stream's first event",
        "",
    ]
    rows = [[f"{int(lv):,}", *[_checks(row[s]) for s in servers]] for lv, row in table.items()]
    lines += _table(head, rows)
    return lines


def _checks(cell: dict[str, Any]) -> str:
    total = {
        key: sum(c.get(key, 0) for c in rounds_of(cell))
        for key in ("responses", "events_received", "events_sent", "bad_responses")
    }
    cut = sum(c.get("aborted_in_flight", 0) for c in rounds_of(cell))
    ramps = [c["ramp_seconds"] for c in rounds_of(cell) if "ramp_seconds" in c]
    return (
        f"{total['responses']:,} resp., {total['events_received']:,} = {total['events_sent']:,}"
        + (f", {total['bad_responses']} bad" if total["bad_responses"] else "")
        + (f", {cut} cut after the drain" if cut else "")
        + (f"; all streaming after {max(ramps):.2f} s" if ramps else "")
        + "".join(
            f"; only {c['streaming']:,} of {c['streams']:,} streaming in a window"
            for c in rounds_of(cell)
            if c.get("streaming", c.get("streams")) != c.get("streams")
        )
    )


def _wrk(r: dict[str, Any]) -> list[str]:
    if not r["wrk"]:
        return []
    found = {k: v for k, v in r["wrk"].items() if v}
    table = r["throughput"]
    conns = r["plan"]["wrk_connections"]
    if not found:
        return ["wrk was not installed: no cross-check by a C client.", ""]
    ours = table.get(str(conns), {})
    head = ["server", f"wrk, {conns} connections", "this load generator, same streams"]
    rows = [
        [NAME[s], _num(v), _num(ours[s]["events_per_s"]) if s in ours else "—"]
        for s, v in found.items()
    ]
    return [
        "**Cross-check with wrk** (whole responses, events/s = requests/s × events per "
        "response; wrk on CPU 1 too):",
        "",
        *_table(head, rows),
    ]


def _latency(r: dict[str, Any]) -> list[str]:
    table = r["latency"]
    if not table:
        return []
    p = r["plan"]
    lines = [
        "## Added latency per event at a paced load",
        "",
        f"{p['latency_streams']:,} streams × {p['latency_rate']:g} events/s "
        f"({p['latency_streams'] * p['latency_rate']:,.0f} events/s asked). Each event "
        "carries the `time.monotonic_ns()` at which it was produced (the baselines' generator, "
        "ssechat's scripted model); the load generator subtracts it on arrival. Events arriving "
        f"in a {p['latency_measure']:g} s window, {p['latency_settle']:g} s after every stream "
        "has started. Milliseconds; ratios are ssechat ÷ baseline (lower is better).",
        "",
    ]
    head = ["server", "p50", "p90", "p99", "p99.9", "max", "events/s got", "server / other CPU"]
    rows = [
        [
            NAME[s],
            *[_ms(c["latency_ms"].get(k)) for k in ("p50", "p90", "p99", "p99.9", "max")],
            _num(c["events_per_s"]),
            f"{c['server_cpu']:.0%} / {c.get('other_cpu', 0):.0%}",
        ]
        for s, c in table.items()
    ]
    lines += _table(head, rows)
    if "S" in table:
        s = table["S"]["latency_ms"]
        head = ["ssechat ÷", "p50", "p99", "p99.9"]
        rows = [
            [b, *[_ratio(s.get(k), table[b]["latency_ms"].get(k)) for k in ("p50", "p99", "p99.9")]]
            for b in _bases(table)
        ]
        lines += _table(head, rows)
    return lines


def _first_byte(r: dict[str, Any]) -> list[str]:
    table = r["first_byte"]
    if not table:
        return []
    p = r["plan"]
    lines = [
        "## Request to first byte",
        "",
        f"One request at a time on a keep-alive connection, {p['first_byte_samples']} samples "
        f"after {p['first_byte_warmup']} warm-up requests, {p['first_byte_events']}-event "
        "responses. For ssechat this includes validating the body, storing the turn (SQLite: "
        "conversation, question, empty answer) and starting the run. Milliseconds.",
        "",
    ]
    head = ["server", "first byte p50", "p99", "first event p50", "p99", "whole response p50"]
    rows = [
        [
            NAME[s],
            _ms(c["first_byte_ms"].get("p50")),
            _ms(c["first_byte_ms"].get("p99")),
            _ms(c["first_event_ms"].get("p50")),
            _ms(c["first_event_ms"].get("p99")),
            _ms(c["response_ms"].get("p50")),
        ]
        for s, c in table.items()
    ]
    lines += _table(head, rows)
    if "S" in table:
        s = table["S"]
        head = ["ssechat ÷", "first byte p50", "p99", "first event p50", "p99"]
        rows = [
            [
                b,
                *[
                    _ratio(s[k].get(q), table[b][k].get(q))
                    for k in ("first_byte_ms", "first_event_ms")
                    for q in ("p50", "p99")
                ],
            ]
            for b in _bases(table)
        ]
        lines += _table(head, rows)
    return lines


def _idle(r: dict[str, Any]) -> list[str]:
    table = r["idle"]
    if not table:
        return []
    p = r["plan"]
    levels = next(iter(table.values()))["levels"]
    caps = {c["capped_by_fd_limit"] for c in table.values() if c.get("capped_by_fd_limit")}
    lines = [
        "## Idle streams",
        "",
        f"Streams whose model emits an event every {p['idle_delay']:g} s, opened up to "
        f"{levels[-1]:,}, with a keepalive ping every {p['idle_keepalive']:g} s. The server's "
        "RSS is read from /proc at each level; bytes per stream is the least-squares slope "
        f"from {levels[0]:,} to {levels[-1]:,}. Then {p['idle_hold']:g} s at the top level: every "
        "stream must get a ping (or an event), and the server's CPU use shows what idle "
        "streams cost. Each load process holds at most 9,000 streams (descriptor limits).",
        "",
    ]
    if caps:
        lines += [
            f"**The top level is {levels[-1]:,}, not {p['idle_levels'][-1]:,}**: a process may "
            f"open only {min(caps):,} descriptors on this machine (a hard limit that cannot be "
            "raised here), and each stream is one.",
            "",
        ]
    head = [
        "server",
        "held",
        "per stream",
        *[f"RSS at {lv:,}" for lv in levels],
        "fewest pings/events in hold",
        "CPU while idle",
        "opened/s",
    ]
    rows = []
    for s, c in table.items():
        rss = [pt["rss"] for pt in c["rss"][1:]]
        rows.append(
            [
                NAME[s],
                f"{c['held']:,}",
                f"{c['bytes_per_stream'] / KIB:.1f} KiB",
                *[f"{v / 2**20:.0f} MiB" for v in rss],
                str(c["min_heard_in_hold"]),
                f"{c['server_cpu']:.0%}",
                _num(c["open_per_s"]),
            ]
        )
    lines += _table(head, rows)
    for name, cell in table.items():
        refused = {k: v for k, v in cell.get("statuses", {}).items() if k != "200"}
        if refused:
            shown = ", ".join(
                f"{v:,} × {'no response head in time' if k == '0' else 'HTTP ' + k}"
                for k, v in refused.items()
            )
            lines += [f"{NAME[name]}: of {cell['responses']:,} streams asked, {shown}.", ""]
    ours = [s for s in ("S", "Sf") if s in table]
    if ours and _bases(table):
        head = ["bytes per idle stream ÷", *[NAME[s] for s in ours]]
        rows = [
            [
                b,
                *[_ratio(table[s]["bytes_per_stream"], table[b]["bytes_per_stream"]) for s in ours],
            ]
            for b in _bases(table)
        ]
        lines += [
            "ssechat's figures as multiples of each baseline's (lower is better). **ssechat** "
            "opens a chat per stream (a stored turn and a run each); **ssechat followers** "
            "open one chat per 100 streams and follow it from the others, so they show what a "
            "stream itself costs.",
            "",
            *_table(head, rows),
        ]
    return lines


def _resume(r: dict[str, Any]) -> list[str]:
    cell = r["resume"].get("S")
    if not cell:
        return []
    points = ("p50", "p99", "p99.9", "max")
    rows = [
        [label, *[_ms(cell[key].get(k)) for k in points]]
        for key, label in (
            ("first_byte_ms", "ssechat, to first byte"),
            ("caught_up_ms", f"ssechat, to all {cell['missed']:,} missed events"),
        )
    ]
    floor = r["resume"].get("T")
    lines = [
        "## Resume with Last-Event-ID",
        "",
        f"Runs of {cell['missed']:,} deltas are streamed to the end; then `GET "
        "/v1/runs/{id}/events` with a `Last-Event-ID` that leaves "
        f"{cell['missed']:,} events to replay from the in-memory log; {cell['samples']} "
        "resumes, one at a time. The streaming baselines have no event log; the floor is T "
        f"answering each request with the same {cell['missed']:,} events in one pre-built "
        "write, asked for and read the same way: no server can replay them faster on this "
        "machine. Milliseconds.",
        "",
    ]
    if floor:
        rows.append(
            [
                f"T, all {cell['missed']:,} events (floor)",
                *[_ms(floor["response_ms"].get(k)) for k in points],
            ]
        )
        caught, least = cell["caught_up_ms"], floor["response_ms"]
        rows.append(
            [
                "ssechat ÷ T (lower is better)",
                *[_ratio(caught.get(k), least.get(k)) for k in points],
            ]
        )
    lines += _table(["", *points], rows)
    return [
        *lines,
        f"Checks: {cell['responses']} resumes, {cell['bad_responses']} with a wrong count.",
        "",
    ]


def _nodelay(r: dict[str, Any]) -> list[str]:
    if not r["nodelay"]:
        return []

    def shown(mode: dict[str, Any]) -> str:
        if "error" in mode or not mode.get("accepted"):
            return "**could not check**: " + str(mode.get("error", "no connection"))[-200:]
        return "yes" if mode["nodelay"] else "**no**"

    rows = [
        [f"{m['loop']} + {m['http']}", ", ".join(m.get("loop_seen", [])), shown(m)]
        for m in r["nodelay"]
    ]
    return [
        "## TCP_NODELAY",
        "",
        "Read with `getsockopt` on the accepted socket from a hook in uvicorn's protocol, while "
        "serving the real ssechat app (`python -m bench.nodelay`). Both event loops set it on "
        "every TCP transport (uvloop always; asyncio since Python 3.6), so no code in ssechat is "
        "needed; `ssechat serve` is uvloop + httptools.",
        "",
        *_table(["event loop + HTTP parser", "loop seen serving", "TCP_NODELAY"], rows),
    ]


def _targets(r: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else "met" if ok else "**not met**"

    tp = r["throughput"]
    for base, want in (("A", 1.0), ("B", 3.0)):
        if tp and "S" in next(iter(tp.values())) and base in next(iter(tp.values())):
            ratios = {
                lv: row["S"]["events_per_s"] / row[base]["events_per_s"] for lv, row in tp.items()
            }
            cpu = {
                lv: (per_cpu(row["S"]) or 0) / (per_cpu(row[base]) or 1) for lv, row in tp.items()
            }
            shown = " / ".join(f"{v:.2f}×" for v in ratios.values())
            shown_cpu = " / ".join(f"{v:.2f}×" for v in cpu.values())
            levels = " / ".join(f"{int(lv):,}" for lv in tp)
            paired = [_paired(row["S"], row[base]) for row in tp.values()]
            by_round = (
                "; round by round: " + " / ".join(f"{lo:.2f}–{hi:.2f}×" for lo, hi in paired)
                if any(lo != hi for lo, hi in paired)
                else ""
            )
            rows.append(
                [
                    f"throughput ≥ {want:g}× {base} ({levels} streams)",
                    f"{shown} (per CPU-s: {shown_cpu}{by_round})",
                    verdict(min(ratios.values()) >= want),
                ]
            )
    lat = r["latency"].get("S")
    if lat:
        p99 = lat["latency_ms"].get("p99")
        got = f"{lat['events_per_s']:,.0f} of {lat['events_per_s_asked']:,.0f} events/s delivered"
        rows.append(
            [
                "p99 added latency ≤ 5 ms, paced",
                f"{_ms(p99)} ms ({got})",
                verdict(p99 is not None and p99 <= 5),
            ]
        )
    for name, what in (("S", "chats"), ("Sf", "followers")):
        idle = r["idle"].get(name)
        if not idle:
            continue
        per = idle["bytes_per_stream"] / KIB
        bases = [b for b in ("A", "R") if b in r["idle"]]
        floors = ", ".join(f"{b}: {r['idle'][b]['bytes_per_stream'] / KIB:.1f}" for b in bases)
        shown = f"{per:.1f} KiB" + (f" (baselines {floors})" if floors else "")
        rows.append([f"≤ 12 KiB per idle stream ({what})", shown, verdict(per <= 12)])
        top = r["plan"]["idle_levels"][-1]
        held = f"{idle['held']:,} held, min {idle['min_heard_in_hold']} pings or events each"
        ok = idle["held"] >= top and idle["min_heard_in_hold"] >= 1
        if idle.get("capped_by_fd_limit"):
            held += (
                f" (the server may open only {idle['capped_by_fd_limit']:,} descriptors on "
                "this machine)"
            )
            ok = idle["held"] >= idle["levels"][-1] and idle["min_heard_in_hold"] >= 1
            capped = "met up to the descriptor limit" if ok else verdict(ok)
            rows.append([f"{top:,} idle streams in one process ({what})", held, capped])
            continue
        rows.append([f"{top:,} idle streams in one process ({what})", held, verdict(ok)])
    res = r["resume"].get("S")
    if res:
        p99 = res["caught_up_ms"].get("p99")
        floor = r["resume"].get("T")
        least = f" (floor T: {_ms(floor['response_ms'].get('p99'))} ms)" if floor else ""
        rows.append(
            [
                f"resume ≤ 1 ms p99 (all {res['missed']:,} missed events)",
                f"{_ms(p99)} ms{least}",
                verdict(p99 is not None and p99 <= 1),
            ]
        )
    modes = r["nodelay"]
    if modes:
        rows.append(
            [
                "TCP_NODELAY on every accepted socket",
                f"{sum(bool(m.get('nodelay')) for m in modes)}/{len(modes)} modes",
                verdict(all(m.get("nodelay") for m in modes)),
            ]
        )
    return ["## Targets (issue 9)", "", *_table(["target", "ssechat", "verdict"], rows)]


def _paired(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[float, float]:
    """The lowest and highest ratio of ssechat's events/s to a baseline's in the same round."""
    ratios = [
        a["events_per_s"] / b["events_per_s"]
        for a, b in zip(rounds_of(ours), rounds_of(theirs), strict=False)
    ]
    return min(ratios), max(ratios)


def _windows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured window of the run (each has the machine's other CPU use)."""
    tp = r["throughput"].values()
    cells = [c for row in tp for cell in row.values() for c in rounds_of(cell)]
    for scenario in ("latency", "first_byte", "resume"):
        cells += r[scenario].values()
    return cells


def _header(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    before, after = r["load_before"], r["load_after"]
    skipped = [s for s in r.get("unavailable", ()) if s == "F"]
    others = [c.get("other_cpu", 0.0) for c in _windows(r)] or [0.0]
    other, mean_other = max(others), sum(others) / len(others)
    quick = (
        " **(quick mode: tiny, for the smoke test; not figures to quote)**"
        if r["plan"]["quick"]
        else ""
    )
    return [
        "# Benchmarks",
        "",
        f"Generated by `{r['command']}` on {r['started']} in {r['seconds'] / 60:.1f} min{quick}. "
        "Do not edit by hand: rerun the command.",
        "",
        "What ssechat exists for — moving model tokens to many clients — measured in one run "
        "on one machine against what users would otherwise write:",
        "",
        *[f"- {label}" for s, label in r["labels"].items() if s in r["plan"]["servers"]],
        *[f"- {r['labels'][s]}: not run (this FastAPI has no `fastapi.sse`)" for s in skipped],
        "",
        "A, B, F and ssechat run under the same uvicorn configuration (uvloop, httptools, log "
        "level warning), each server fresh for each measurement, "
        + (
            "pinned to CPU 0 with the load generator on CPU 1 (taskset)."
            if r["pinned"]
            else "**not pinned** (fewer than two CPUs or no taskset)."
        ),
        "",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['kernel']}",
        f"- **Load average** before / after the run: {before[0]:.2f} / {after[0]:.2f} "
        "(1 min; a quiet machine is near 0 before; more means other work shared the CPUs, and "
        "the per-CPU-second figures are the ones to trust)",
        f"- **Other work on the machine** during the measured windows (CPUs busy with neither "
        f"the server nor the load generator): at most {other:.0%}, on average {mean_other:.0%}",
        f"- **Software**: {m['python']}; {versions}; wrk: {m['wrk']}",
        f"- **Reproduce**: `pip install -e '.[bench]' && apt-get install -y wrk && {r['command']}`",
        "",
    ]


# ssechat alone (`python -m bench run --servers S --scenarios ...`), measured on this machine
# right after each change landed: the record of what each one did. Throughput is events/s at
# 1 / 100 / 1,000 streams; "paced" is the 1,000 × 20 events/s load.
_CHANGES = [
    (
        "before (the previous full run, 2026-12-06 13:53, on the same machine, each cell "
        "measured once)",
        "throughput 90,800 / 84,000 / 51,600 events/s (1.50× / 1.19× / 0.79× A, 4.68× / "
        "4.42× / 2.56× B); paced p99 2.57 ms; resume p50 1.28 ms, p99 2.38 ms; idle 17.8 KiB "
        "per chat, 11.3 per follower. ssechat at 1,000 streams gave 51,200 and 51,600 events/s "
        "in that session's two full runs, A 38,800 and 65,600: the ratio was a draw of which "
        "server got a fast minute of the machine",
    ),
    (
        "the bench measures throughput in rounds: every server three times per level, each "
        "round in a rotated order; the median round stands for the cell, the range beside it",
        "three interleaved rounds by hand on the code before, at 1,000 streams: ssechat "
        "54,300–58,100, A 46,900–59,700, B 14,600–21,500 events/s; medians 1.05× A, 3.24× B",
    ),
    (
        "the canonical dialect quotes a delta's text with the json module's C encoder into an "
        "f-string (the same bytes as `orjson.dumps` for every code point, checked one by one), "
        "not `bytes %` with orjson; a replay renders its batch in one go "
        "(`CanonicalRenderer.render_items`: one encode for the batch, no call per delta)",
        "1,000 deltas rendered, in process, the three forms interleaved (min of 11): 377 µs "
        "(before) → 313 µs (a call per delta) → 194 µs (the batch). Resume of 1,000 missed "
        "events beside the code before, three runs each: p50 1.39–1.61 → 1.21–1.28 ms",
    ),
    (
        "the resume table has a floor: T answering with the same 1,000 events in one "
        "pre-built write, asked for and read the same way",
        "T, p50 / p99: 0.217 / 0.944 ms in the run of 15:44, 0.192 / 0.288 ms in this one: "
        "the floor's own tail swings with the machine",
    ),
    (
        "a full run with these (2026-12-06 15:44, 35 min)",
        "throughput 87,100 / 84,800 / 51,500 events/s, medians of three rounds (1.19× / 1.35× "
        "/ 1.11× A, 3.56× / 3.83× / 2.99× B; round by round at 1,000: 1.11–1.38× A, "
        "2.68–3.40× B); paced p99 2.24 ms; resume p99 2.28 ms beside a floor of 0.944; idle "
        "17.8 KiB per chat, 11.4 per follower",
    ),
    (
        "the OpenAI, AI SDK and seed dialects build a delta's message once with a mark for "
        "its text (`dialects.TextTemplate`) and only quote each token into it, as the "
        "canonical dialect formats its own",
        "not what this report streams (the canonical dialect), but each token of an OpenAI "
        "client's stream: in process, per token, OpenAI 2.2 → 0.37–0.41 µs, the seeds' delta, "
        "keyed, typed and vanna dialects 1.3–2.2 → 0.38–0.42 µs",
    ),
    (
        "writes held back by autocorking wait in one heap under one timer for the earliest "
        "(`_Writes.hold`), not under a timer handle and a libuv timer each (thousands a second "
        "at saturation); those due are released together, back to back",
        "paced 1,000 × 20/s beside the code before, four runs each: 0.81–0.88 → 0.75–0.83 of a "
        "CPU for the same events, p99 2.03–2.77 → 1.97–3.40 ms; 1,000 saturated streams, six "
        "runs each: 44,600–70,400 → 56,600–64,100 events/s. In process, a held write: "
        "3.0 → 1.8 µs",
    ),
    (
        "the full run of 2026-12-06 16:52 (the code with all of the above)",
        "throughput 90,100 / 90,600 / 63,600 events/s (1.73× / 1.17× / 1.27× A, 3.59× / "
        "4.20× / 3.47× B; round by round at 1,000: 1.01–1.40× A, 3.42–3.75× B); paced p99 "
        "3.00 ms; resume p50 1.16 ms, p99 1.60 ms beside a floor of 0.288; idle 18.0 KiB per "
        "chat, 11.3 per follower",
    ),
    (
        "measured, not changed: FastAPI's dependency solving per request",
        "in process, a route's call with nothing to do (min / median of 7 × 2,000): the "
        "resume route's signature (user, services, a header and two query parameters) "
        "171 / 191 µs; the same route taking only the `Request` 83 / 100 µs; a plain "
        "Starlette route 39 / 43 µs. Each header or query parameter costs about 18 µs. "
        "A resume's fixed part is about 0.3 ms of server CPU, of which FastAPI's is half. "
        "Kept then: the routes' parameters are their OpenAPI documentation (the resume "
        "route's changed below)",
    ),
    (
        "a response's head leaves with the first of its body, in one write: uvicorn still "
        "makes the head, and what it writes is held while it does (`transport._send_held`), "
        "for the head and for the response's end; a replay of an ended run is one write, head "
        "to end, where it was two",
        "timed inside the server, the head's write alone had taken 84–100 µs of its time per "
        "response. Resume of 1,000 missed events beside the code before, four runs each: p50 "
        "1.10–1.31 → 0.83–1.20 ms, server CPU per resume 1.04–1.21 → 0.82–1.10 ms",
    ),
    (
        "the resume route reads `Last-Event-ID`, `last_event_id` and `format` from the request "
        "itself and documents them in its OpenAPI entry; the user and the services stay "
        "dependencies (a host app's own user dependency replaces ssechat's through them, "
        "`mount`)",
        "in process, the route answering 204 with nothing to replay (min / median of 9 × "
        "1,000): 195–207 / 206–214 → 136–141 / 144–155 µs (taking only the `Request`: "
        "100–111). Both changes beside the code of the session's start, four runs each: resume "
        "p50 0.84–0.90 → 0.74–0.78 ms, server CPU per resume 0.83–0.87 → 0.73–0.83 ms",
    ),
    (
        "measured, not changed: where a resume's time goes",
        "a bare ASGI app under the same uvicorn, answering with the same 1,000 events in one "
        "`send`: p50 0.22–0.24 ms, p99 0.37–0.39 (T: 0.19 / 0.30), so uvicorn's part is about "
        "0.04 ms. The rest is ssechat's Python: in process, the route (FastAPI's routing and "
        "two dependencies, the owner check, the subscription) about 0.14 ms, and rendering "
        "1,000 deltas about 0.22 ms. Other forms of that render, in process (min of 40 × 20): "
        "the f-string list comprehension 223 µs; `%` over the whole batch 216–237; `map` with "
        "`str.format` 423, with `%` 320; a join of 4,000 pieces placed by slice assignment "
        "198, but it needs the batch's other events found first (33 µs). A delta costs about "
        "0.2 µs whichever way: a replay renders at CPython's floor. Under it is not rendering "
        "at all: frames rendered ahead (for every run, and kept beside its log: twice the "
        "log's memory) or cached at a first replay (which only a later replay of the same run "
        "would find: what this bench measures, but not a client resuming its own run). "
        "Neither done then; the log's messages below are the first, in place of the log's "
        "items rather than beside them",
    ),
    (
        "measured, not changed: memory per idle chat, by owner",
        "tracemalloc over 2,000 idle chats: 17.1 KB each. uvicorn's objects 7.5 KB (three "
        "empty deques at 760 B each: its pipeline queue and two `asyncio.Event`s; the "
        "httptools parser 912 B; the request's task 707 B), uvloop's transport 1.2 KB, the "
        "run's 8.3 KB (the scripted model's sleep 1.1 KB, the parameters model 760 B, the "
        "run's task 728 B, generator frames about 400 B each). No one part is near the 6 KiB "
        "that 12 KiB would take off",
    ),
    (
        "the full run of 2026-12-06 19:26 (the code with all of the above)",
        "throughput 91,992 / 71,882 / 44,750 events/s (1.38× / 0.93× / 0.86× A, 3.87× / 3.62×"
        " / 2.30× B; round by round at 1,000: 0.86–1.18× A, 2.20–3.99× B); paced p99 2.14 ms;"
        " resume p50 1.18 ms, p99 2.37 ms beside a floor of 0.597, twice the floor of the run"
        " before: a slow hour of the machine; idle 17.8 KiB per chat, 11.3 per follower. A "
        "full run an hour earlier, of the code before the last commit (a write with no head "
        "skips a copy), gave 85,487 / 84,761 / 55,789 events/s (1.24× / 1.18× / 0.96× A, "
        "3.48× / 3.90× / 2.88× B), paced p99 2.87 ms, resume p50 0.800 ms, p99 1.41 ms beside"
        " a floor of 0.326. The code of the session's start and this code at 1,000 saturated "
        "streams, seven interleaved runs each, right after this run: medians 53,300 and "
        "53,900 events/s (49,600–75,900 and 51,200–58,500): the lower throughput of these two"
        " runs is the machine's, not the code's",
    ),
    (
        "the in-memory log keeps a run as the canonical dialect's messages, each rendered "
        "once as its event is added and joined 64 at a time (`eventlog.memory._Log`, "
        "`dialects.ssechat.Frames`); a stream in that dialect is handed them as they are, live "
        "and replayed, so a resume is a join of bytes, not a render per event; a stream in "
        "another dialect parses them back",
        "resume of 1,000 missed events beside the code before, four interleaved runs each: "
        "p50 0.81–1.23 → 0.48–0.66 ms, p99 1.33–1.78 → 0.75–0.81 ms (one run 1.94), server "
        "CPU per resume 0.86–1.05 → 0.45–0.59 ms. The cost is at the append: in process, an "
        "add heard by a canonical stream 0.67–0.73 → 0.86–0.89 µs (the message is kept until "
        "its piece of 64 is joined, not dropped after its write); 1,000 saturated streams, "
        "19 interleaved pairs: medians 55,200 → 50,400 events/s (46,900–63,300 and "
        "34,100–73,300): perhaps 5–9% fewer, inside the machine's swing. An ended run's "
        "delta: 65 → 49 bytes in memory; an idle chat: +0.4 KB (its start and status "
        "messages)",
    ),
    (
        "a replica's copy of a Redis log makes each message from the payload Redis keeps, "
        "without parsing it (`MemoryEventLog.add_message`); redis-py parses replies with "
        "hiredis (`redis[hiredis]`)",
        "not in this report (one process, in memory): loading a run of 1,000 deltas into a "
        "copy, in process against a real Redis: 41 µs per event (redis-py's own parser, about "
        "90% of it) → 5.8–8.9 with hiredis → 3.4–5.1 without the parse",
    ),
    (
        "a stream takes its connection over from uvicorn once its head is ready (the "
        "transport's protocol becomes the stream, as uvicorn's own WebSocket upgrade makes "
        "it another; `transport._Direct`), and gives it to a new uvicorn protocol at its "
        "end: uvicorn's protocol, request cycle, parser and task are dropped, and a stream "
        "that listens holds no task or frame of its own",
        "tracemalloc over 2,000 idle chats: 17.3 → 9.3 KB each (uvicorn's objects 7.4 KB → "
        "0.4, the uvloop transport's address caches). The idle scenario alone (A, S and Sf, "
        "20,000 streams): 18.0 → 10.1 KiB per chat, 11.3 → 4.1 per follower, A 24.9. "
        "Beside the code before, interleaved, four runs each: 1,000 saturated streams "
        "50,100–59,200 → 47,100–61,900 events/s, 100 streams 63,200–82,700 → 74,300–96,300; "
        "resume of 1,000 missed events, seven runs each: p50 0.57–0.69 → 0.49–0.72 ms, server"
        " CPU per resume 0.50–0.61 → 0.46–0.73 ms: no change beyond the machine's swing (a "
        "new protocol for the connection's next request costs about 6 µs)",
    ),
    (
        "the full run of 2026-12-06 22:16 (the code with all of the above)",
        "throughput 76,491 / 66,873 / 52,184 events/s (1.47× / 0.95× / 1.16× A, 4.01× / "
        "3.11× / 3.24× B; round by round: 1.16–1.64× / 0.93–1.21× / 0.92–1.32× A); paced p99 "
        "2.32 ms; resume p50 0.563 ms, p99 0.902 ms beside a floor of 0.338: the first full "
        "run to meet the resume target; idle 18.0 KiB per chat, 11.3 per follower",
    ),
    (
        "the full run of 2026-12-07 00:28 (the code with all of the above)",
        "throughput 74,578 / 78,171 / 55,407 events/s (1.34× / 1.33× / 1.25× A, 3.77× / "
        "4.31× / 2.92× B; round by round: 1.13–1.53× / 1.06–1.50× / 1.02–1.46× A, 2.30–3.15× "
        "B at 1,000); paced p99 3.65 ms; resume p50 0.608 ms, p99 2.14 ms beside a floor of "
        "0.783, 2.3 times the floor of the run before: a slow window of the machine (the same "
        "ratio to the floor as then, 2.7×); idle 10.0 KiB per chat, 4.1 per follower: the "
        "first full run to meet the memory target",
    ),
    (
        "the full run of 2026-12-07 01:06, right after it, of the same code (a quieter "
        "window: other work 1% on average, and T's resume p99 0.518 ms)",
        "throughput 72,063 / 71,064 / 53,772 events/s (1.33× / 1.15× / 1.07× A, 3.82× / "
        "3.11× / 2.81× B; round by round: 1.29–1.49× / 0.88–1.51× / 1.00–1.41× A, 2.52–3.05× "
        "B at 1,000); paced p99 2.90 ms; resume p50 0.628 ms, p99 0.820 ms; idle 10.3 KiB per "
        "chat, 4.1 per follower. ssechat at 1,000 streams is where it was (52,200–55,400 in "
        "the last four full runs); B there gave 16,100 in the run of 2026-12-06 22:16, and "
        "18,950 and 19,100 in these two",
    ),
    (
        "requests that arrive together share one query for whether API keys exist "
        "(`auth._asked_once`): the 1,000 chats of the saturated level, sent at once, made about "
        "850 `COUNT` queries, each a hop to aiosqlite's one thread, before any could start",
        "streams with their first event, 8 s after the requests: 650 of 1,000 → all of "
        "them after 1.5 s; so, on the code before, ssechat was still starting streams in "
        "the window, and measured about 600 of them. 1,000 streams, the bench's window as it "
        "was, "
        "three runs each beside B, on a slow hour of the machine: 39,800 and 42,800 → 52,700–"
        "75,800 events/s, B 13,600–16,200",
    ),
    (
        "the throughput window opens once every stream has had its first event (it opened "
        "3 s after the requests): uvicorn on uvloop accepts one connection per turn of the "
        "loop (libuv since 1.45), so A and B, each turn of theirs busy with ~600 streams, "
        "still had a few hundred of 1,000 to accept when their windows opened",
        "the report's checks give how long every level took to have all of its streams "
        "streaming. 1,000 streams, three interleaved runs: ssechat 57,000–71,100 events/s, A "
        "37,700–45,600, B 15,300–16,900",
    ),
    (
        "this run (2026-12-07 03:09, the code with all of the above)",
        "throughput 55,827 / 78,177 / 59,329 events/s (1.13× / 1.27× / 1.26× A, 3.13× / "
        "4.19× / 3.38× B; round by round at 1,000: 1.13–1.55× A, 3.29–3.91× B); all 1,000 "
        "streams streaming after 1.75 s (A 9.60 s, B 10.60 s); paced p99 2.26 ms; resume p50 "
        "0.651 ms, p99 0.822 ms beside a floor of 0.485; idle 10.0 KiB per chat, 3.8 per "
        "follower: the first full run to meet every target",
    ),
]
CHANGES = "\n".join(
    [
        "",
        "## What changed ssechat's figures, before and after",
        "",
        "ssechat right after each change, on this machine: alone (`--servers S`), or beside "
        "A or the code before it, taken in turn where the machine drifted.",
        "",
        "| change | measured right after |",
        "|---|---|",
        *(f"| {change} | {measured} |" for change, measured in _CHANGES),
        "",
    ]
)

METHOD = """## How it is measured

- **Load generator** (`bench/loadgen.py`, `bench/client.py`): its own process on uvloop,
  raw `asyncio.Protocol` connections (no HTTP library): it writes a pre-built request,
  undoes chunked framing, and counts events with `bytes.count` over whole SSE messages. It is
  calibrated against T, which writes each whole response at once: the rate it reaches there,
  and its own CPU use in every cell above, show it is not what limits the servers.
- **Events**: every server sends the same message as ssechat's `delta`
  (`id`, `event: delta`, `data: {"text": …}`). The baselines write one chunk per event;
  ssechat writes an event at once when its stream has not been written to for
  `write_interval` (5 ms), and otherwise with the others that come until then (so a paced
  stream is written event by event, a saturated one in shared writes). Producers await between
  events: the paced delay, or one turn of the event loop when asked for events as fast as
  possible (as a model's network read does; ssechat's scripted model does the same in its
  `stamp` mode), so concurrent streams interleave event by event everywhere.
- **Baselines**: A yields pre-encoded bytes; B yields dicts with a pre-encoded JSON string;
  F yields `ServerSentEvent(raw_data=…)`, its cheapest documented path; R is a raw uvloop
  protocol (httptools parser), a task per stream, one `transport.write` per event.
- **ssechat** runs as `ssechat serve --model-backend scripted` with a fresh SQLite database:
  each chat request validates its body, stores the turn, starts a run whose events go to the
  in-memory event log, and streams them to the response through a subscription.
- **Latency** is the arrival time minus the stamp, both `time.monotonic_ns()` (one clock for
  every process on Linux). It includes the loopback; R shows that floor. Paced events are
  stamped when produced, so a server that falls behind shows it as fewer events/s got than
  asked rather than as latency.
- **Memory per idle stream** is the slope of the server's RSS between the first and last
  levels, so start-up memory does not count.
- **Profiling**: run one scenario against one server (`python -m bench run --servers S
  --scenarios throughput`) and attach `py-spy record -p <server pid>` or `py-spy top`; the
  server is `python -m ssechat serve`, pinned to CPU 0.
- No timing is asserted by the test suite: `tests/integration/test_bench_smoke.py` runs
  `python -m bench run --quick` and checks that every table is filled and every count adds up.
"""


def write(results: dict[str, Any], out: Path) -> Path:
    """Write benchmarks.md and the plots into `out` (the docs directory)."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        from bench import plots  # matplotlib: the `bench` extra
    except ImportError:
        images: list[str] = []
        figures = ["matplotlib is not installed (`pip install -e '.[bench]'`): no plots.", ""]
    else:
        images = plots.write_all(results, out)
        figures = [f"![{name}]({name})" for name in images] + [""]
    lines = [
        *_header(results),
        *_targets(results),
        *_throughput(results),
        *_wrk(results),
        *_latency(results),
        *_first_byte(results),
        *_idle(results),
        *_resume(results),
        *_nodelay(results),
        "## Plots",
        "",
        *figures,
        CHANGES,
        METHOD,
    ]
    path = out / "benchmarks.md"
    path.write_text("\n".join(lines))
    return path
