"""Hostile statements against the sample database, through the guard and the read-only
connection together (ssechat.sqlguard.guard + execute): each is refused, or runs bounded by
the row limit and the time limit — and the database file's checksum never changes.

One file for two modules on purpose: the promise under test is theirs together.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ssechat.sqlguard.execute import SAMPLE_DATABASE, DataSource, Result, SqlFailed
from ssechat.sqlguard.guard import SqlRefused, check

TIME_LIMIT = 0.5
ROW_LIMIT = 50

HOSTILE = [
    # writes and schema changes
    "DROP TABLE customers",
    "DELETE FROM orders",
    "UPDATE products SET price = 0",
    "INSERT INTO customers (id, name) VALUES (999, 'x')",
    "INSERT OR REPLACE INTO products VALUES (1, 'x', 'y', 0)",
    "REPLACE INTO products VALUES (1, 'x', 'y', 0)",
    "CREATE TABLE pwned (x)",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM orders; END",
    "ALTER TABLE customers ADD COLUMN pwned TEXT",
    "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
    "SELECT * INTO pwned FROM customers",
    # more than one statement, some hidden behind comments
    "SELECT 1; DROP TABLE customers",
    "SELECT 1 /* harmless */; DELETE FROM orders",
    "SELECT 1 -- a comment\n; DROP TABLE customers",
    "SELECT * FROM customers; -- trailing\nDELETE FROM orders",
    "SELECT '; DROP TABLE customers; --' AS s; DROP TABLE customers",
    "SHOW TABLES; DROP TABLE customers",
    "DESCRIBE customers; DELETE FROM customers",
    "BEGIN; DELETE FROM orders; COMMIT",
    # other databases, pragmas, extensions, files
    "ATTACH DATABASE '/tmp/ssechat-pwned.db' AS pwned",
    "ATTACH ':memory:' AS m",
    "DETACH DATABASE main",
    "PRAGMA writable_schema = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA query_only = OFF",
    "PRAGMA user_version = 42",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM pragma_table_info('customers')",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT \"load_extension\"('/tmp/evil')",
    "SELECT writefile('/tmp/ssechat-pwned', 'x')",
    "VACUUM",
    "VACUUM INTO '/tmp/ssechat-copy.db'",
    "REINDEX",
    "ANALYZE",
    "SAVEPOINT a",
    "EXPLAIN ANALYZE DELETE FROM orders",
    # resource bombs: bounded by the time limit, the row limit or the blob cap
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r",
    "SELECT count(*) FROM order_items a, order_items b, order_items c",
    "SELECT * FROM order_items a CROSS JOIN order_items b CROSS JOIN order_items c",
    "SELECT randomblob(2000000000)",
    "SELECT zeroblob(1000000000)",
    "SELECT printf('%.*c', 1000000000, 'x')",
    "SELECT group_concat(a.name || b.name) FROM customers a, customers b, customers c",
]


OUTSIDE = ("/tmp/ssechat-pwned.db", "/tmp/ssechat-copy.db", "/tmp/ssechat-pwned")


def written_outside() -> list[str]:
    """Files the hostile statements above would create if any got through."""
    return [name for name in OUTSIDE if Path(name).exists()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "shop.sqlite"
    shutil.copyfile(SAMPLE_DATABASE, path)
    return path


@pytest.fixture
async def source(database: Path) -> AsyncIterator[DataSource]:
    opened = DataSource(f"sqlite:///{database}", timeout=TIME_LIMIT, row_limit=ROW_LIMIT)
    yield opened
    await opened.aclose()


def test_there_are_at_least_thirty_hostile_statements() -> None:
    assert len(HOSTILE) >= 30
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("sql", HOSTILE)
async def test_a_hostile_statement_is_refused_or_bounded_and_changes_nothing(
    sql: str, source: DataSource, database: Path
) -> None:
    before = digest(database)
    started = time.monotonic()
    outcome: Result | Exception
    try:
        async with asyncio.timeout(TIME_LIMIT + 5):
            outcome = await source.run(check(sql, source.policy))
    except (SqlRefused, SqlFailed) as exc:
        outcome = exc
    elapsed = time.monotonic() - started
    assert digest(database) == before
    assert elapsed < TIME_LIMIT + 1.0
    if isinstance(outcome, Result):  # it ran: only as a bounded read
        assert len(outcome.rows) <= ROW_LIMIT
    else:
        assert outcome.message  # a reason someone can read
    assert not written_outside()


async def test_a_recursive_bomb_stops_at_the_time_limit_with_a_clear_message(
    source: DataSource,
) -> None:
    sql = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
    with pytest.raises(SqlFailed, match=r"time limit"):
        await source.run(check(sql, source.policy))


async def test_an_endless_result_is_cut_at_the_row_limit_and_marked_truncated(
    source: DataSource,
) -> None:
    sql = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r"
    result = await source.run(check(sql, source.policy))
    assert len(result.rows) == ROW_LIMIT
    assert result.truncated
