"""The guard (ssechat.sqlguard.guard): what may run, and what runs instead of the model's text."""

from __future__ import annotations

import pytest

from ssechat.sqlguard.guard import Checked, Policy, SqlRefused, check

SQLITE = Policy("sqlite", row_limit=100)
POSTGRES = Policy("postgres", row_limit=100)


def refused(sql: str, policy: Policy = SQLITE) -> str:
    with pytest.raises(SqlRefused) as caught:
        check(sql, policy)
    assert caught.value.code == "sql_refused"
    return caught.value.message


def test_a_plain_select_gets_the_row_limit_plus_one() -> None:
    assert check("SELECT * FROM customers", SQLITE) == Checked(
        "query", "SELECT * FROM customers LIMIT 101"
    )


def test_a_smaller_limit_of_the_querys_own_is_kept() -> None:
    assert (
        check("SELECT * FROM t LIMIT 5 OFFSET 2", SQLITE).sql == "SELECT * FROM t LIMIT 5 OFFSET 2"
    )


def test_a_larger_limit_is_lowered_to_the_cap() -> None:
    assert check("SELECT * FROM t LIMIT 5000", SQLITE).sql == "SELECT * FROM t LIMIT 101"


def test_a_computed_limit_is_bounded_from_outside() -> None:
    sql = check("SELECT * FROM t LIMIT (SELECT 1000000)", SQLITE).sql
    assert sql.startswith("SELECT * FROM (SELECT * FROM t LIMIT (SELECT 1000000))")
    assert sql.endswith("LIMIT 101")


def test_a_postgres_fetch_clause_is_bounded_from_outside() -> None:
    sql = check("SELECT * FROM t FETCH FIRST 5000 ROWS ONLY", POSTGRES).sql
    assert sql.endswith("LIMIT 101")


def test_a_set_operation_is_limited_as_a_whole() -> None:
    assert check("SELECT 1 UNION SELECT 2", SQLITE).sql == "SELECT 1 UNION SELECT 2 LIMIT 101"


def test_a_parenthesised_query_is_unwrapped() -> None:
    assert check("(SELECT 1)", SQLITE).sql == "SELECT 1 LIMIT 101"


def test_comments_and_a_trailing_semicolon_do_not_reach_the_database() -> None:
    checked = check("SELECT 1 /* note */ -- more\n;", SQLITE)
    assert checked.sql == "SELECT 1 LIMIT 101"


def test_a_read_only_cte_and_recursion_pass() -> None:
    sql = (
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5) "
        "SELECT x FROM r"
    )
    assert check(sql, SQLITE).sql == sql + " LIMIT 101"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT strftime('%Y', ordered_at) AS y, COUNT(*) FROM orders GROUP BY y",
        "SELECT name FROM products WHERE name LIKE '%Book%'",
        "SELECT c.name FROM customers AS c JOIN orders AS o ON o.customer_id = c.id",
        "SELECT 'pg_sleep(1)' AS text_that_only_looks_dangerous",
        "SELECT * FROM generate_series(1, 3)",
    ],
)
def test_ordinary_read_queries_pass(sql: str) -> None:
    assert check(sql, SQLITE).kind == "query"


def test_show_tables_and_describe_are_answered_from_the_schema() -> None:
    assert check("SHOW TABLES;", SQLITE) == Checked("tables")
    assert check("describe customers", SQLITE) == Checked("columns", table="customers")
    assert check("DESC TABLE `orders`", SQLITE) == Checked("columns", table="orders")
    assert check('SHOW COLUMNS FROM "order_items"', SQLITE) == Checked(
        "columns", table="order_items"
    )


def test_other_show_statements_are_refused() -> None:
    assert "SHOW TABLES" in refused("SHOW DATABASES")


def test_explain_runs_as_the_dialects_plan_of_the_checked_query() -> None:
    assert (
        check("EXPLAIN SELECT * FROM t", SQLITE).sql
        == "EXPLAIN QUERY PLAN SELECT * FROM t LIMIT 101"
    )
    assert check("EXPLAIN SELECT * FROM t", POSTGRES).sql == "EXPLAIN SELECT * FROM t LIMIT 101"


@pytest.mark.parametrize(
    "sql", ["EXPLAIN ANALYZE SELECT 1", "EXPLAIN (ANALYZE) SELECT 1", "EXPLAIN DELETE FROM t"]
)
def test_explain_that_would_run_or_write_is_refused(sql: str) -> None:
    refused(sql, POSTGRES)


def test_the_refusal_says_what_the_statement_is() -> None:
    assert "a DROP statement" in refused("DROP TABLE customers")
    assert "an ATTACH statement" in refused("ATTACH DATABASE 'x.db' AS x")
    assert "2 statements" in refused("SELECT 1; SELECT 2")
    assert "load_extension()" in refused("SELECT load_extension('x')")
    assert "SELECT … INTO" in refused("SELECT * INTO copy FROM customers", POSTGRES)
    assert "row lock" in refused("SELECT * FROM t FOR UPDATE", POSTGRES)
    assert "could not be parsed" in refused("SELECT FROM WHERE (")
    assert "empty" in refused("   ")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_sleep(5)",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT query_to_xml('DELETE FROM t', true, true, '')",
        "SELECT dblink_exec('host=x', 'DROP TABLE t')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT nextval('s')",
        "SELECT pg_terminate_backend(1)",
        "SELECT pg_advisory_lock(1)",
    ],
)
def test_denied_postgres_functions_are_refused(sql: str) -> None:
    assert "not allowed" in refused(sql, POSTGRES)


def test_the_allow_list_admits_only_its_tables() -> None:
    policy = Policy("sqlite", 100, frozenset({"customers"}))
    assert check("SELECT * FROM customers", policy).kind == "query"
    assert check("SELECT * FROM main.customers", policy).kind == "query"
    assert "orders is not one" in refused("SELECT * FROM customers JOIN orders ON 1", policy)
    assert "sqlite_master" in refused("SELECT sql FROM sqlite_master", policy)
    assert "other.customers" in refused("SELECT * FROM other.customers", policy)
    assert "orders" in refused("DESCRIBE orders", policy)


def test_a_cte_is_not_mistaken_for_a_table_outside_the_allow_list() -> None:
    policy = Policy("sqlite", 100, frozenset({"customers"}))
    sql = "WITH big AS (SELECT * FROM customers) SELECT * FROM big"
    assert check(sql, policy).kind == "query"


def test_a_cte_cannot_hide_a_table_outside_the_allow_list() -> None:
    policy = Policy("sqlite", 100, frozenset({"customers"}))
    refused("WITH big AS (SELECT * FROM orders) SELECT * FROM big", policy)
