"""`ssechat serve | ask`: the command line.

Flags override `SSECHAT_*` environment variables, which override `.env`, which overrides the
defaults in `Settings`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ssechat import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssechat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ssechat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--model-backend", choices=["llamacpp", "openai", "scripted"])
    serve.add_argument("--model", help="model name (for openai: the server's model id)")
    serve.add_argument("--llamacpp-model-path", help="GGUF file for the llamacpp backend")
    serve.add_argument("--openai-base-url", help="e.g. http://127.0.0.1:11434/v1 for Ollama")
    serve.add_argument("--openai-api-key")
    serve.add_argument("--keepalive-interval", type=float, help="seconds between pings")
    serve.add_argument("--grace-period", type=float, help="seconds a run outlives its clients")
    serve.add_argument("--log-level", default="info")

    ask = commands.add_parser("ask", help="ask a running server and print the answer as it streams")
    ask.add_argument("question")
    ask.add_argument("--url", default="http://127.0.0.1:8000")
    ask.add_argument("--pipeline", default="chat")
    ask.add_argument("--api-key")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _ask(args)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ssechat.app import create_app
    from ssechat.config import Settings

    names = (
        "host",
        "port",
        "model_backend",
        "model",
        "llamacpp_model_path",
        "openai_base_url",
        "openai_api_key",
        "keepalive_interval",
        "grace_period",
    )
    overrides: dict[str, Any] = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    settings = Settings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def _ask(args: argparse.Namespace) -> int:
    from ssechat.client import ChatError, Client
    from ssechat.events import Delta

    with Client(args.url, api_key=args.api_key) as client:
        try:
            for event in client.stream(args.question, pipeline=args.pipeline):
                if isinstance(event, Delta):
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
        except ChatError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
