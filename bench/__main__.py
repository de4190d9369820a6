"""`python -m bench run [--quick]`: run every benchmark and write docs/benchmarks.md.

python -m bench run                  # the full run (about 35 minutes on 2 cores)
python -m bench run --quick          # tiny, seconds: what the smoke test runs
python -m bench run --servers A,S    # a subset (the report says which)
python -m bench report results.json  # rewrite the report from saved results
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from bench import report, runner
from bench.procs import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the benchmarks and write the report")
    run.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    run.add_argument("--servers", help=f"comma-separated subset of {','.join(runner.SERVERS)}")
    run.add_argument("--scenarios", help=f"comma-separated subset of {','.join(runner.SCENARIOS)}")
    run.add_argument("--out", type=Path, default=ROOT / "docs", help="report directory")
    run.add_argument(
        "--results", type=Path, help="also save the raw results as JSON (default: none)"
    )
    rewrite = commands.add_parser("report", help="write the report from saved results")
    rewrite.add_argument("results", type=Path)
    rewrite.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the servers and load generators started are stopped.
    signal.signal(signal.SIGTERM, _interrupt)

    if args.command == "report":
        results = json.loads(args.results.read_text())
    else:
        servers = tuple(args.servers.split(",")) if args.servers else None
        if servers and not set(servers) <= set(runner.available()):
            parser.error(f"--servers: choose from {','.join(runner.available())}")
        scenarios = tuple(args.scenarios.split(",")) if args.scenarios else None
        if scenarios and not set(scenarios) <= set(runner.SCENARIOS):
            parser.error(f"--scenarios: choose from {','.join(runner.SCENARIOS)}")
        command = "python -m bench " + shlex.join((argv or sys.argv[1:])[:1] + _shown(args))
        plan = runner.plan_for(args.quick, servers, scenarios)
        results = runner.run(plan, command, log=_log)
        if args.results:
            args.results.write_text(json.dumps(results, indent=1))
    path = report.write(results, args.out)
    _log(f"wrote {path}")
    return 0


def _shown(args: argparse.Namespace) -> list[str]:
    """The options that change what is measured, as the report should quote them."""
    shown = ["--quick"] if args.quick else []
    shown += ["--servers", args.servers] if args.servers else []
    return shown + (["--scenarios", args.scenarios] if args.scenarios else [])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
