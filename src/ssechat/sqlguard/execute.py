"""A data source: the database the sql pipeline queries, opened so that it cannot be changed.

The guard (`guard.py`) decides what may run; this module makes sure that even a statement it
let through by mistake cannot write or run forever:

- SQLite: the file is opened `mode=ro` (the OS-level promise: SQLite refuses any write), with
  `PRAGMA query_only`, no attachable databases (`SQLITE_LIMIT_ATTACHED` 0), a 16 MB cap on any
  string or blob, and during a query an authorizer that allows reading, selecting, recursive
  CTEs and functions not on the guard's deny list — nothing else. A progress handler stops a
  query at its time limit, or at once when the run is stopped. Queries run on a small pool of
  worker threads, so a slow query never blocks the event loop and other streams.
- PostgreSQL (through asyncpg, `pip install "ssechat[postgres]"`): every connection starts
  with `default_transaction_read_only` and `statement_timeout`, and every query runs in a
  transaction opened with `SET TRANSACTION READ ONLY` and `SET LOCAL statement_timeout`, then
  rolled back. Cancelling the awaiting task cancels the query on the server.

Other databases are refused at start: their read-only guarantees are not wired here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ssechat.errors import SsechatError
from ssechat.sqlguard.guard import Checked, Policy, _denied
from ssechat.sqlguard.schema import Schema, introspect

SAMPLE_DATABASE = Path(__file__).resolve().parent.parent / "data" / "shop.sqlite"
_MAX_LENGTH = 16_000_000  # bytes in any one string or blob (SQLite's default is 1 GB)
_BACKSTOP = 5.0  # seconds past the time limit after which we stop waiting, whatever the driver


class SqlFailed(SsechatError):
    """The database could not answer: an error, the time limit, or no database at all."""

    code = "sql_failed"


@dataclass(frozen=True, slots=True)
class Result:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  # at most the row limit
    truncated: bool  # the query had more rows than the limit


class DataSource:
    """One database to query read-only, its schema introspected once and cached.

    `url` is a SQLAlchemy URL (`sqlite:///shop.db`, `postgresql://user@host/db`); None is the
    sample shop database shipped with ssechat."""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 5.0,
        row_limit: int = 10_000,
        allowed_tables: Iterable[str] = (),
        workers: int = 4,
    ) -> None:
        allowed = frozenset(t.lower() for t in allowed_tables) or None
        self.timeout = timeout
        self._schema: Schema | None = None
        self._schema_lock = asyncio.Lock()
        self._sqlite_path: Path | None = None
        self._async_engine: AsyncEngine | None = None
        self._pool: ThreadPoolExecutor | None = None
        if url is None:
            url = f"sqlite:///{SAMPLE_DATABASE}"
        try:
            parsed = sa.make_url(url)
        except ArgumentError as exc:
            raise _unavailable(f"{url!r} is not a database URL") from exc
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            self._sqlite_path = _sqlite_file(parsed.database)
            path = self._sqlite_path
            self._engine = sa.create_engine(
                "sqlite://", creator=lambda: _connect_sqlite(path), poolclass=NullPool
            )
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sqlguard")
            self.dialect = "sqlite"
        elif backend == "postgresql":
            if importlib.util.find_spec("asyncpg") is None:
                raise _unavailable('PostgreSQL needs asyncpg: pip install "ssechat[postgres]"')
            milliseconds = str(int(timeout * 1000))
            self._async_engine = create_async_engine(
                parsed.set(drivername="postgresql+asyncpg"),
                pool_size=workers,
                pool_pre_ping=True,
                connect_args={
                    "server_settings": {
                        "default_transaction_read_only": "on",
                        "statement_timeout": milliseconds,
                    }
                },
            )
            self.dialect = "postgresql"
        else:
            raise _unavailable(
                f"{backend} databases are not supported: the sql pipeline queries SQLite and "
                "PostgreSQL, whose read-only modes it enforces"
            )
        self.policy = Policy(
            dialect="sqlite" if self.dialect == "sqlite" else "postgres",
            row_limit=row_limit,
            allowed_tables=allowed,
        )

    async def schema(self) -> Schema:
        """The database's schema (allowed tables only), read on first use."""
        async with self._schema_lock:
            if self._schema is None:
                self._schema = await self._introspect()
            return self._schema

    async def run(self, checked: Checked) -> Result:
        """Run a statement that passed the guard; `SqlFailed` if the database refuses it."""
        if checked.kind == "tables":
            columns, rows = (await self.schema()).tables_result()
            return Result(columns, tuple(rows), False)
        if checked.kind == "columns":
            schema = await self.schema()
            table = schema.find(checked.table)
            if table is None:
                raise SqlFailed(f"there is no table named {checked.table}")
            columns, rows = schema.columns_result(table)
            return Result(columns, tuple(rows), False)
        if self._sqlite_path is not None:
            result: Result = await self._in_thread(self._run_sqlite, checked.sql)
            return result
        return await self._run_postgres(checked.sql)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._async_engine is not None:
            await self._async_engine.dispose()
        else:
            self._engine.dispose()

    # -- SQLite ------------------------------------------------------------------------

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args, stop)` on a worker; cancelling (or the backstop) sets `stop`, which
        the query's progress handler sees within microseconds."""
        assert self._pool is not None
        stop = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args, stop)
        try:
            async with asyncio.timeout(self.timeout + _BACKSTOP):
                return await asyncio.shield(future)
        except TimeoutError:
            stop.set()
            raise SqlFailed(f"the query ran past its {self.timeout:g} s time limit") from None
        except asyncio.CancelledError:
            stop.set()
            raise

    def _run_sqlite(self, sql: str, stop: threading.Event) -> Result:
        assert self._sqlite_path is not None
        deadline = time.monotonic() + self.timeout
        with closing(_connect_sqlite(self._sqlite_path)) as conn:
            conn.set_progress_handler(_progress(deadline, stop), 1000)
            conn.set_authorizer(self._authorize)
            try:
                cursor = conn.execute(sql)
                columns = tuple(d[0] for d in cursor.description or ())
                rows = cursor.fetchmany(self.policy.row_limit + 1)
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc, deadline, stop) from exc
        return _result(columns, rows, self.policy.row_limit)

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: Any
    ) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            allowed = self.policy.allowed_tables
            ok = allowed is None or (arg1 or "").lower() in allowed
            return sqlite3.SQLITE_OK if ok else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and not _denied((arg2 or "").lower()):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    def _sqlite_error(
        self, exc: sqlite3.Error, deadline: float, stop: threading.Event
    ) -> Exception:
        message = str(exc)
        if message == "interrupted" and not stop.is_set() and time.monotonic() >= deadline:
            return SqlFailed(f"the query ran past its {self.timeout:g} s time limit")
        if "not authorized" in message:
            return SqlFailed("the database refused it: not authorized (the connection only reads)")
        return SqlFailed(f"the database refused it: {message}")

    def _introspect_sqlite(self, stop: threading.Event) -> Schema:
        deadline = time.monotonic() + max(30.0, 4 * self.timeout)
        with self._engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            raw.set_progress_handler(_progress(deadline, stop), 1000)
            try:
                return introspect(conn, allowed=self.policy.allowed_tables)
            finally:
                raw.set_progress_handler(None, 0)

    # -- PostgreSQL ----------------------------------------------------------------------

    async def _run_postgres(self, sql: str) -> Result:
        assert self._async_engine is not None
        try:
            async with (
                asyncio.timeout(self.timeout + _BACKSTOP),
                self._async_engine.connect() as conn,
            ):
                await self._begin_read_only(conn)
                result = await conn.exec_driver_sql(sql)
                columns = tuple(result.keys()) if result.returns_rows else ()
                rows = result.fetchmany(self.policy.row_limit + 1) if columns else []
                await conn.rollback()  # also undoes any SET the statement made
        except TimeoutError:
            raise SqlFailed(f"the query ran past its {self.timeout:g} s time limit") from None
        except DBAPIError as exc:
            raise self._postgres_error(exc) from exc
        except OSError as exc:
            raise _unavailable(f"could not connect: {exc}") from exc
        return _result(columns, rows, self.policy.row_limit)

    async def _begin_read_only(self, conn: Any) -> None:
        # The first statement of the transaction SQLAlchemy begins: READ ONLY must come first.
        await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(self.timeout * 1000)}")
        # After a first query PostgreSQL refuses `SET TRANSACTION READ WRITE`, so no statement
        # can switch the transaction back (and asyncpg runs one statement per call anyway).
        await conn.exec_driver_sql("SELECT 1")

    def _postgres_error(self, exc: DBAPIError) -> SqlFailed:
        message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if "statement timeout" in message:
            return SqlFailed(f"the query ran past its {self.timeout:g} s time limit")
        return SqlFailed(f"the database refused it: {_without_class(message)}")

    async def _introspect(self) -> Schema:
        if self._sqlite_path is not None:
            schema: Schema = await self._in_thread(self._introspect_sqlite)
            return schema
        assert self._async_engine is not None
        try:
            async with self._async_engine.connect() as conn:
                await self._begin_read_only(conn)
                allowed = self.policy.allowed_tables
                found: Schema = await conn.run_sync(lambda c: introspect(c, allowed=allowed))
                await conn.rollback()
                return found
        except (DBAPIError, OSError) as exc:
            raise _unavailable(f"could not read the database's schema: {exc}") from exc


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _MAX_LENGTH)
    return conn


def _sqlite_file(database: str | None) -> Path:
    if not database or database == ":memory:" or database.startswith("file:"):
        raise _unavailable("the SQLite URL must name a database file: sqlite:///path/to/db")
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise _unavailable(f"there is no SQLite database at {path}")
    return path


def _progress(deadline: float, stop: threading.Event) -> Any:
    def check() -> int:
        return 1 if stop.is_set() or time.monotonic() > deadline else 0

    return check


def _result(columns: tuple[str, ...], rows: Sequence[Any], limit: int) -> Result:
    return Result(columns, tuple(tuple(r) for r in rows[:limit]), len(rows) > limit)


def _without_class(message: str) -> str:
    # asyncpg via SQLAlchemy: "<class 'asyncpg.exceptions.UndefinedTableError'>: relation …"
    return message.split(">: ", 1)[1] if message.startswith("<class ") else message


def _unavailable(message: str) -> SqlFailed:
    return SqlFailed(f"the SQL database is not available: {message}", code="sql_unavailable")
