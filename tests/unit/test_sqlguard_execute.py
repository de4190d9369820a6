"""Data sources (ssechat.sqlguard.execute): read-only for real, bounded in time, off the event
loop — on SQLite, and on a real PostgreSQL when its binaries are installed."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from ssechat.sqlguard.execute import SAMPLE_DATABASE, DataSource, Result, SqlFailed
from ssechat.sqlguard.guard import Checked, SqlRefused, check
from tests.postgres import postgres_bin, postgres_cluster

BOMB = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
TABLES = ("customers", "products", "orders", "order_items")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "shop.sqlite"
    shutil.copyfile(SAMPLE_DATABASE, path)
    return path


@pytest.fixture
async def source(database: Path) -> AsyncIterator[DataSource]:
    opened = DataSource(f"sqlite:///{database}", timeout=1.0, row_limit=100)
    yield opened
    await opened.aclose()


async def test_the_sample_database_is_the_default_and_answers_a_query() -> None:
    source = DataSource()
    try:
        result = await source.run(check("SELECT COUNT(*) AS n FROM customers", source.policy))
        assert result.columns == ("n",)
        assert result.rows == ((250,),)
        assert not result.truncated
        assert source.dialect == "sqlite"
    finally:
        await source.aclose()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "UPDATE products SET price = 0",
        "DROP TABLE customers",
        "CREATE TABLE pwned (x)",
        "ATTACH DATABASE ':memory:' AS m",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "SELECT load_extension('x')",
        "SELECT * FROM pragma_database_list",
    ],
)
async def test_the_connection_refuses_writes_even_without_the_guard(
    sql: str, source: DataSource, database: Path
) -> None:
    before = digest(database)
    with pytest.raises(SqlFailed, match="not authorized"):
        await source.run(Checked("query", sql))  # a statement the guard would have refused
    assert digest(database) == before


def test_the_file_itself_is_opened_read_only(database: Path) -> None:
    from ssechat.sqlguard.execute import _connect_sqlite

    conn = _connect_sqlite(database)
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
            conn.execute("DELETE FROM orders")
    finally:
        conn.close()


async def test_a_query_past_the_time_limit_fails_with_a_clear_message(source: DataSource) -> None:
    started = time.monotonic()
    with pytest.raises(SqlFailed, match=r"ran past its 1 s time limit"):
        await source.run(check(BOMB, source.policy))
    assert time.monotonic() - started < 2.0


async def test_a_slow_query_does_not_block_the_event_loop(source: DataSource) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(SqlFailed):
            await source.run(check(BOMB, source.policy))
    finally:
        ticker.cancel()
    assert ticks >= 40  # about 100 in the second the query ran


async def test_cancelling_a_query_frees_its_worker_at_once(database: Path) -> None:
    source = DataSource(f"sqlite:///{database}", timeout=30.0, workers=1)
    try:
        task = asyncio.create_task(source.run(check(BOMB, source.policy)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(2):  # one worker: it must have stopped the bomb
            result = await source.run(check("SELECT 1 AS one", source.policy))
        assert result.rows == ((1,),)
    finally:
        await source.aclose()


async def test_the_row_limit_cuts_the_result_and_says_so(source: DataSource) -> None:
    result = await source.run(check("SELECT id FROM orders ORDER BY id", source.policy))
    assert len(result.rows) == 100
    assert result.rows[-1] == (100,)
    assert result.truncated
    exact = await source.run(check("SELECT id FROM orders LIMIT 100", source.policy))
    assert len(exact.rows) == 100
    assert not exact.truncated


async def test_the_schema_is_read_once_and_cached(source: DataSource) -> None:
    first = await source.schema()
    assert await source.schema() is first
    assert [t.name for t in first.tables] == ["customers", "order_items", "orders", "products"]


async def test_show_tables_and_describe_come_from_the_schema(source: DataSource) -> None:
    tables = await source.run(check("SHOW TABLES", source.policy))
    assert tables.columns == ("table", "rows")
    assert ("orders", 1500) in tables.rows
    described = await source.run(check("DESCRIBE orders", source.policy))
    assert described.columns == ("column", "type", "nullable", "key")
    assert described.rows[1] == ("customer_id", "INTEGER", "NO", "REFERENCES customers(id)")
    with pytest.raises(SqlFailed, match="no table named nope"):
        await source.run(check("DESCRIBE nope", source.policy))


async def test_the_allow_list_hides_other_tables_from_the_schema_and_the_connection(
    database: Path,
) -> None:
    source = DataSource(f"sqlite:///{database}", allowed_tables=["Customers"])
    try:
        assert [t.name for t in (await source.schema()).tables] == ["customers"]
        with pytest.raises(SqlRefused):
            check("SELECT * FROM orders", source.policy)
        with pytest.raises(SqlFailed, match=r"access to orders\.id is prohibited"):
            await source.run(Checked("query", "SELECT * FROM orders"))
    finally:
        await source.aclose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@localhost/shop", "mysql databases are not supported"),
        ("sqlite://", "must name a database file"),
        ("sqlite:///:memory:", "must name a database file"),
        ("sqlite:////nonexistent/shop.db", "no SQLite database at"),
        ("not a url", "not a database URL"),
    ],
)
def test_an_unusable_database_url_is_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(SqlFailed, match=message) as caught:
        DataSource(url)
    assert caught.value.code == "sql_unavailable"


# -- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs Debian's postgresql)")
    with postgres_cluster() as cluster:
        asyncio.run(_load_shop(cluster.url))
        yield cluster.url


async def _load_shop(url: str) -> None:
    """The sample shop, copied into PostgreSQL (prices as NUMERIC, dates as DATE)."""
    engine = create_async_engine(url)
    source = sqlite3.connect(SAMPLE_DATABASE)
    async with engine.begin() as conn:
        for ddl in (
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, "
            "country TEXT, signed_up TEXT)",
            "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, "
            "price NUMERIC(10, 2))",
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES "
            "customers(id), ordered_at TEXT, status TEXT)",
            "CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES "
            "orders(id), product_id INTEGER REFERENCES products(id), quantity INTEGER, "
            "unit_price NUMERIC(10, 2))",
        ):
            await conn.exec_driver_sql(ddl)
        raw = await conn.get_raw_connection()
        for table in TABLES:
            rows = source.execute(f"SELECT * FROM {table}").fetchall()
            if table in ("products", "order_items"):
                rows = [(*r[:-1], Decimal(str(r[-1]))) for r in rows]
            await raw.driver_connection.copy_records_to_table(table, records=rows)
    source.close()
    await engine.dispose()


async def _checksum(url: str) -> str:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        parts = []
        for table in TABLES:
            result = await conn.exec_driver_sql(
                f"SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM {table} t"
            )
            parts.append(str(result.scalar_one()))
        names = await conn.exec_driver_sql(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
            "WHERE schemaname = 'public'"
        )
        parts.append(str(names.scalar_one()))
    await engine.dispose()
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


@pytest.fixture
async def pg_source(postgres: str) -> AsyncIterator[DataSource]:
    opened = DataSource(postgres.replace("+asyncpg", ""), timeout=1.0, row_limit=100)
    yield opened
    await opened.aclose()


async def test_postgres_answers_a_query_with_its_own_types(pg_source: DataSource) -> None:
    assert pg_source.dialect == "postgresql"
    sql = "SELECT category, SUM(price) AS total FROM products GROUP BY category ORDER BY category"
    result = await pg_source.run(check(sql, pg_source.policy))
    assert result.columns == ("category", "total")
    assert result.rows[0][0] == "Books"
    assert isinstance(result.rows[0][1], Decimal)


async def test_postgres_schema_is_introspected(pg_source: DataSource) -> None:
    schema = await pg_source.schema()
    orders = schema.find("orders")
    assert orders is not None
    assert orders.rows == 1500
    assert "REFERENCES customers(id)" in schema.prompt()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "DROP TABLE order_items",
        "CREATE TABLE pwned (x int)",
        "UPDATE products SET price = 0",
        "SET TRANSACTION READ WRITE",
        "SELECT nextval('pwned')",
        # Not here: COPY … TO a server file, which a read-only transaction allows to a
        # superuser. The guard refuses COPY; docs/sql.md asks for a role that may only SELECT.
    ],
)
async def test_postgres_refuses_writes_even_without_the_guard(
    sql: str, pg_source: DataSource, postgres: str
) -> None:
    before = await _checksum(postgres)
    with pytest.raises(SqlFailed):
        await pg_source.run(Checked("query", sql))
    assert await _checksum(postgres) == before


async def test_postgres_settings_changed_by_a_query_do_not_outlive_it(
    pg_source: DataSource,
) -> None:
    off = "SELECT set_config('default_transaction_read_only', 'off', false)"
    for _ in range(3):  # whichever pooled connection serves the next query
        await pg_source.run(Checked("query", off))
    with pytest.raises(SqlFailed, match="read-only transaction"):
        await pg_source.run(Checked("query", "DELETE FROM orders"))


async def test_postgres_stops_a_query_at_the_statement_timeout(pg_source: DataSource) -> None:
    started = time.monotonic()
    with pytest.raises(SqlFailed, match="time limit"):
        await pg_source.run(Checked("query", "SELECT pg_sleep(10)"))
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_sleep(10)",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
        "SELECT * INTO pwned FROM customers",
        "SELECT * FROM customers FOR UPDATE",
        "SELECT 1; DROP TABLE customers",
        "SELECT pg_read_file('/etc/passwd')",
        BOMB,
        "SELECT count(*) FROM order_items a, order_items b, order_items c",
    ],
)
async def test_postgres_hostile_statements_are_refused_or_bounded(
    sql: str, pg_source: DataSource, postgres: str
) -> None:
    before = await _checksum(postgres)
    outcome: Result | SqlRefused | SqlFailed
    try:
        outcome = await pg_source.run(check(sql, pg_source.policy))
    except (SqlRefused, SqlFailed) as exc:
        outcome = exc
    assert await _checksum(postgres) == before
    if isinstance(outcome, Result):  # it ran: only as a bounded read
        assert len(outcome.rows) <= 100
    else:
        assert outcome.message
