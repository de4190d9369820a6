"""Finding the SQL in a model's answer (ssechat.sqlguard.extract), in seed 000's order."""

from __future__ import annotations

import pytest

from ssechat.models import ToolCall
from ssechat.sqlguard.extract import extract_sql


def call(arguments: str, name: str = "run_sql") -> ToolCall:
    return ToolCall("call_1", name, arguments)


def test_a_tool_call_wins_over_a_fenced_block_in_the_text() -> None:
    text = "```sql\nSELECT 2 FROM b\n```"
    assert extract_sql(text, [call('{"sql": "SELECT 1 FROM a;"}')]) == "SELECT 1 FROM a"


def test_a_tool_call_may_name_its_argument_query() -> None:
    assert extract_sql("", [call('{"query": "SELECT 1 FROM a"}')]) == "SELECT 1 FROM a"


@pytest.mark.parametrize(
    "arguments", ["not json", "[1, 2]", '{"sql": ""}', '{"sql": 3}', '{"other": "SELECT 1"}']
)
def test_unusable_tool_arguments_fall_back_to_the_text(arguments: str) -> None:
    assert extract_sql("```sql\nSELECT 1 FROM t\n```", [call(arguments)]) == "SELECT 1 FROM t"


def test_a_call_to_another_tool_is_not_sql() -> None:
    assert extract_sql("no sql here", [call('{"sql": "SELECT 1"}', name="weather")]) is None


def test_a_fenced_sql_block_wins_over_a_statement_in_the_prose() -> None:
    text = "SELECT name FROM wrong\n\nBetter:\n```SQL\nSELECT id FROM right;\n```"
    assert extract_sql(text) == "SELECT id FROM right"


def test_the_whole_fenced_block_is_kept_so_a_second_statement_reaches_the_guard() -> None:
    text = "```sql\nSELECT 1 FROM a;\nDROP TABLE a;\n```"
    assert extract_sql(text) == "SELECT 1 FROM a;\nDROP TABLE a"


def test_an_unterminated_fence_runs_to_the_end_of_the_answer() -> None:
    assert extract_sql("Here:\n```sql\nSELECT 1 FROM t") == "SELECT 1 FROM t"


def test_a_bare_fence_counts_when_it_holds_a_statement() -> None:
    assert extract_sql("```\nselect * from t\n```") == "select * from t"
    assert extract_sql("```\nnot a query\n```") is None


def test_a_statement_pattern_is_found_in_prose_up_to_the_semicolon() -> None:
    text = "You can run SELECT COUNT(*) FROM customers; to count them."
    assert extract_sql(text) == "SELECT COUNT(*) FROM customers"


def test_a_statement_pattern_stops_at_a_blank_line() -> None:
    text = "Query:\nSELECT name\nFROM products\nWHERE price > 10\n\nThis lists them."
    assert extract_sql(text) == "SELECT name\nFROM products\nWHERE price > 10"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Try WITH t AS (SELECT 1 AS x) SELECT x FROM t",
            "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
        ),
        ("Run SHOW TABLES to see them.", "SHOW TABLES"),
        ("Use SHOW COLUMNS FROM orders here", "SHOW COLUMNS FROM orders"),
        ("Then:\nDESCRIBE customers\n", "DESCRIBE customers"),
        ("EXPLAIN SELECT * FROM t;", "EXPLAIN SELECT * FROM t"),
        ("Answer:\nselect name from t where x = 1", "select name from t where x = 1"),
    ],
)
def test_each_read_statement_pattern_is_recognised(text: str, expected: str) -> None:
    assert extract_sql(text) == expected


def test_prose_that_merely_uses_sql_words_is_not_sql() -> None:
    assert extract_sql("Please select a product from the list and show it to me.") is None


def test_the_earliest_pattern_in_the_answer_is_taken() -> None:
    text = "First SELECT a FROM one; then SHOW TABLES"
    assert extract_sql(text) == "SELECT a FROM one"


@pytest.mark.parametrize(
    "statement", ["DROP TABLE customers", "delete from orders", "PRAGMA writable_schema = 1"]
)
def test_the_keyword_fallback_finds_write_statements_for_the_guard_to_refuse(
    statement: str,
) -> None:
    assert extract_sql(f"Sure.\n{statement};\nDone.") == statement


def test_the_keyword_fallback_finds_a_select_without_from() -> None:
    assert extract_sql("The answer is\nSELECT 1 + 1\n") == "SELECT 1 + 1"


def test_an_answer_without_sql_gives_none() -> None:
    assert extract_sql("There are ten customers.") is None
    assert extract_sql("") is None
