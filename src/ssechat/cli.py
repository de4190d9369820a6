"""`ssechat serve | ask`: the command line.

Flags override `SSECHAT_*` environment variables, which override `.env`, which overrides the
defaults in `Settings`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ssechat import __version__

# The collector's thresholds once start-up is frozen. CPython's (700, 10, 10) collects the
# young generation every 700 objects and everything every hundred of those: with a thousand
# streams alive a full collection walks ~150,000 of their objects and holds every stream up
# for ~80 ms, every few seconds. Rarer collections: a run's objects mostly die young, by
# reference count, before any collection sees them (paced 1,000 × 20 events/s: p99.9 of
# the added latency 13 → 5 ms, the longest 30-40 → 5-7 ms; bench/ and docs/benchmarks.md).
GC_THRESHOLDS = (50_000, 20, 10)

if TYPE_CHECKING:
    from ssechat.config import Settings


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
    serve.add_argument(
        "--database-url", help="SQLAlchemy async URL; SQLite in the data dir if unset"
    )
    serve.add_argument(
        "--redis-url", help="Redis for event logs shared by replicas; in memory if unset"
    )
    serve.add_argument("--data-dir", help="where the SQLite database lives (default .ssechat)")
    serve.add_argument("--trusted-user-header", help="take the user from this proxy-set header")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_const",
        const=True,
        help="allow listening beyond loopback with no API keys",
    )
    serve.add_argument(
        "--pipeline",
        dest="pipelines",
        action="append",
        metavar="[NAME=]MODULE:FUNCTION",
        help="register an async generator as a pipeline (repeatable)",
    )
    serve.add_argument("--log-level", default="info")

    ask = commands.add_parser("ask", help="ask a running server and print the answer as it streams")
    ask.add_argument("question")
    ask.add_argument("--url", default="http://127.0.0.1:8000")
    ask.add_argument("--pipeline", default="chat")
    ask.add_argument("--api-key")

    keys = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key for a user; printed once")
    create.add_argument("--user", required=True)
    keys_commands.add_parser("list", help="list keys (prefix, user, created)")
    revoke = keys_commands.add_parser("revoke", help="revoke a key by its listed prefix")
    revoke.add_argument("prefix")
    for sub in (create, revoke, keys_commands.choices["list"]):
        sub.add_argument("--database-url")
        sub.add_argument("--data-dir")

    commands.add_parser("plugins", help="list installed pipeline and model plugins")

    ingest = commands.add_parser("ingest", help="add files and folders to a user's documents")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help=".txt .md .html .pdf, folders")
    ingest.add_argument("--user", default="local", help="whose documents (default: local)")
    ingest.add_argument("--database-url")
    ingest.add_argument("--data-dir")

    args = parser.parse_args(argv)
    if args.command == "plugins":
        return _plugins()
    if args.command == "serve":
        return _serve(args)
    if args.command == "keys":
        return asyncio.run(_keys(args))
    if args.command == "ingest":
        return asyncio.run(_ingest(args))
    return _ask(args)


def _settings(args: argparse.Namespace, names: Sequence[str]) -> Settings:
    from ssechat.config import Settings

    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return Settings(**given)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ssechat.app import create_app
    from ssechat.plugins import PluginError

    settings = _settings(
        args,
        (
            "host", "port", "model_backend", "model", "llamacpp_model_path", "openai_base_url",
            "openai_api_key", "keepalive_interval", "grace_period", "database_url", "redis_url",
            "data_dir", "trusted_user_header", "insecure_no_auth", "pipelines",
        ),
    )  # fmt: skip
    if refusal := asyncio.run(_unprotected_bind(settings)):
        print(f"ssechat: {refusal}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
    except PluginError as exc:
        print(f"ssechat: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )

    class DrainingServer(uvicorn.Server):
        """On SIGTERM, drain the runs before uvicorn stops the connections: running answers
        get `drain_timeout` to finish, and subscribers still connected receive the `shutdown`
        event of those that could not, instead of a cut connection."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # What start-up made (modules, the app, the model, the store) lives as long as
            # the process: kept out of the collector's generations, no collection walks it.
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            services = getattr(app.state, "ssechat", None)
            if services is not None:
                await services.runs.drain(settings.drain_timeout)
            await super().shutdown(sockets)

    DrainingServer(config).run()
    return 0


def _plugins() -> int:
    from ssechat.plugins import MODEL_GROUP, PluginError, discover, load

    plugins = discover()
    if not plugins:
        print("no plugins installed (entry point groups: ssechat.pipelines, ssechat.models)")
    failed = 0
    for plugin in plugins:
        kind = "model" if plugin.group == MODEL_GROUP else "pipeline"
        try:
            load(plugin)
            state = "ok"
        except PluginError as exc:
            state, failed = f"FAILED: {exc}", failed + 1
        print(f"{kind}\t{plugin.name}\t{plugin.value}\t({plugin.distribution})\t{state}")
    return 1 if failed else 0


async def _unprotected_bind(settings: Settings) -> str | None:
    """Without API keys anyone who can reach the port is the local user: allow that only on
    loopback, behind a trusted auth proxy, or when explicitly told. Returns the refusal."""
    from ssechat.auth import is_loopback
    from ssechat.store import Store, sqlite_url

    if is_loopback(settings.host) or settings.insecure_no_auth or settings.trusted_user_header:
        return None
    store = await Store.open(settings.database_url or sqlite_url(settings.data_dir))
    try:
        if await store.has_keys():
            return None
    finally:
        await store.close()
    return (
        f"refusing to listen on {settings.host} with no API keys: create one with "
        "`ssechat keys create --user NAME`, or pass --insecure-no-auth"
    )


async def _keys(args: argparse.Namespace) -> int:
    from ssechat.store import Store, sqlite_url

    settings = _settings(args, ("database_url", "data_dir"))
    store = await Store.open(settings.database_url or sqlite_url(settings.data_dir))
    try:
        if args.keys_command == "create":
            print(await store.create_key(args.user))
            print("Keep it: only its hash is stored; it cannot be shown again.", file=sys.stderr)
        elif args.keys_command == "list":
            for key in await store.list_keys():
                print(f"{key.prefix}…\t{key.user_id}\t{key.created_at:%Y-%m-%d %H:%M}")
        elif not await store.revoke_key(args.prefix.rstrip("…")):
            print(f"no key with prefix {args.prefix}", file=sys.stderr)
            return 1
    finally:
        await store.close()
    return 0


async def _ingest(args: argparse.Namespace) -> int:
    """Ingest each file (folders recursively); one line per file; 1 if any was refused."""
    from pathlib import Path

    from ssechat.retrieval.documents import Ingested, ingest_files
    from ssechat.retrieval.embeddings import create_embedder
    from ssechat.store import Store, sqlite_url

    settings = _settings(args, ("database_url", "data_dir"))
    store = await Store.open(settings.database_url or sqlite_url(settings.data_dir))
    embedder = create_embedder(settings)
    refused = 0
    try:
        paths = [Path(p) for p in args.paths]
        async for path, done in ingest_files(store, args.user, paths, settings, embedder=embedder):
            if isinstance(done, Ingested):
                print(f"{done.status}\t{path}\t{done.document.chunk_count} chunks")
            else:
                refused += 1
                print(f"refused\t{path}\t{done}", file=sys.stderr)
    finally:
        if embedder is not None:
            await embedder.aclose()
        await store.close()
    return 1 if refused else 0


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
