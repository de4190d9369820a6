"""The sql pipeline (ssechat.pipelines.sql) with the scripted model: a golden set of questions
with known SQL over the sample shop, self-repair, clear failures, and what a run records."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from ssechat.config import Settings
from ssechat.errors import SsechatError
from ssechat.eventlog.memory import MemoryEventLog
from ssechat.events import Complete, Csv, Error, Event, Sql, Status, Table
from ssechat.models import GenerationParams, Message, ModelDelta, ToolCall
from ssechat.models.scripted import ScriptedBackend, ScriptedParams, ScriptedToolCall
from ssechat.pipelines import Context, get_pipeline
from ssechat.pipelines.sql import RESOURCE, SQL_TOOL, build_messages, data_source
from ssechat.runs import RunManager
from ssechat.services import Services
from ssechat.sqlguard.execute import SAMPLE_DATABASE
from ssechat.sqlguard.export import find_export
from ssechat.store import Store, sqlite_url

SUMMARY = "Here is the answer."
ROW_LIMIT = 1000
PREVIEW = 5


class Recording(ScriptedBackend):
    """The scripted model, keeping every request it was sent."""

    def __init__(self) -> None:
        super().__init__("")
        self.requests: list[tuple[list[Message], GenerationParams]] = []

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[ModelDelta, None]:
        self.requests.append((list(messages), params))
        async for delta in super().stream(messages, params):
            yield delta


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        model_backend="scripted",
        sql_row_limit=ROW_LIMIT,
        sql_preview_rows=PREVIEW,
    )
    store = await Store.open(sqlite_url(tmp_path))
    model = Recording()
    runs = RunManager(MemoryEventLog(), store)
    svc = Services(settings, model, runs, store)
    yield svc
    await runs.aclose()
    await svc.aclose_resources()
    await store.close()


def model_of(svc: Services) -> Recording:
    assert isinstance(svc.model, Recording)
    return svc.model


def context(svc: Services, question: str, **params: Any) -> Context:
    return Context(
        question,
        svc.model,
        ScriptedParams(**params),
        user="alice",
        system_prompt=svc.settings.system_prompts["sql"],
        services=svc,
    )


async def ask(svc: Services, question: str, *replies: str | ToolCall) -> list[Event | str]:
    """Run the pipeline on the scripted `replies`; every item it yields, within 10 s."""
    model_of(svc).enqueue(*replies)
    items: list[Event | str] = []
    async with asyncio.timeout(10):
        async for item in get_pipeline("sql")(context(svc, question)):
            items.append(item)
    return items


def of(items: Sequence[Event | str], kind: type[Any]) -> list[Any]:
    return [i for i in items if isinstance(i, kind)]


def tool(sql: str) -> ToolCall:
    return ToolCall("call_1", "run_sql", orjson.dumps({"sql": sql}).decode())


def reply(delivery: str, sql: str) -> str | ToolCall:
    if delivery == "tool":
        return tool(sql)
    if delivery == "fence":
        return f"Sure, this query answers it:\n\n```sql\n{sql};\n```\n"
    return f"You can run {sql};"  # the statement pattern, in prose


def expected_csv(sql: str, limit: int = ROW_LIMIT) -> tuple[list[tuple[Any, ...]], bytes]:
    """Independently of the pipeline: the rows from plain sqlite3, written as RFC 4180."""
    with sqlite3.connect(f"file:{SAMPLE_DATABASE}?mode=ro", uri=True) as conn:
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()[:limit]

    def cell(value: Any) -> str:
        text = "" if value is None else repr(value) if isinstance(value, float) else str(value)
        return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text

    lines = [",".join(columns)] + [",".join(cell(v) for v in row) for row in rows]
    return rows, "".join(line + "\r\n" for line in lines).encode()


# (question, how the model delivers the SQL, the SQL, row count, first row)
GOLDEN = [
    ("How many customers are there?", "tool",
     "SELECT COUNT(*) AS customers FROM customers", 1, (250,)),
    ("How many products are in each category?", "fence",
     "SELECT category, COUNT(*) AS products FROM products GROUP BY category ORDER BY category",
     6, ("Books", 7)),
    ("List the books, cheapest first.", "prose",
     "SELECT name, price FROM products WHERE category = 'Books' ORDER BY price",
     7, ("Indexes in Depth", 12.65)),
    ("How many orders were cancelled?", "tool",
     "SELECT COUNT(*) AS cancelled FROM orders WHERE status = 'cancelled'", 1, (123,)),
    ("How many orders are there per status?", "fence",
     "SELECT status, COUNT(*) AS orders FROM orders GROUP BY status ORDER BY orders DESC",
     4, ("delivered", 1053)),
    ("Which 5 products sold the most units?", "tool",
     "SELECT p.name, SUM(oi.quantity) AS units FROM order_items AS oi JOIN products AS p "
     "ON p.id = oi.product_id GROUP BY p.name ORDER BY units DESC, p.name LIMIT 5",
     5, ("Data Modeling", 172)),
    ("What is the revenue per country?", "fence",
     "SELECT c.country, ROUND(SUM(oi.quantity * oi.unit_price), 2) AS revenue FROM customers "
     "AS c JOIN orders AS o ON o.customer_id = c.id JOIN order_items AS oi ON oi.order_id = o.id"
     " WHERE o.status <> 'cancelled' GROUP BY c.country ORDER BY revenue DESC",
     11, ("United Kingdom", 44203.65)),
    ("Which city has the most customers?", "prose",
     "SELECT city, COUNT(*) AS customers FROM customers GROUP BY city "
     "ORDER BY customers DESC, city LIMIT 1", 1, ("Warsaw", 24)),
    ("What is the average product price?", "tool",
     "SELECT ROUND(AVG(price), 2) AS average_price FROM products", 1, (71.15,)),
    ("Which customers live in Germany?", "fence",
     "SELECT name, city FROM customers WHERE country = 'Germany' ORDER BY name",
     30, ("Alan Hopper", "Berlin")),
    ("How many orders were placed each month of 2024?", "tool",
     "SELECT strftime('%Y-%m', ordered_at) AS month, COUNT(*) AS orders FROM orders "
     "WHERE ordered_at LIKE '2024-%' GROUP BY month ORDER BY month", 12, ("2024-01", 2)),
    ("Who are the 3 customers with the most orders?", "fence",
     "SELECT c.name, COUNT(o.id) AS orders FROM customers AS c JOIN orders AS o "
     "ON o.customer_id = c.id GROUP BY c.id ORDER BY orders DESC, c.name LIMIT 3",
     3, ("Barbara Ritchie", 15)),
    ("Which products were never ordered?", "tool",
     "SELECT p.name FROM products AS p LEFT JOIN order_items AS oi ON oi.product_id = p.id "
     "WHERE oi.id IS NULL", 0, None),
    ("What is the most expensive product?", "prose",
     "SELECT name, price FROM products ORDER BY price DESC LIMIT 1", 1, ("Wireless Mouse", 346.8)),
    ("What was the largest order by value?", "fence",
     "WITH totals AS (SELECT order_id, SUM(quantity * unit_price) AS total FROM order_items "
     "GROUP BY order_id) SELECT order_id, ROUND(total, 2) AS total FROM totals "
     "ORDER BY total DESC LIMIT 1", 1, (1272, 1577.7)),
    ("How many customers signed up in 2025?", "tool",
     "SELECT COUNT(*) AS signups FROM customers WHERE signed_up >= '2025-01-01'", 1, (55,)),
    ("Show me all the orders.", "fence",
     "SELECT * FROM orders ORDER BY id", ROW_LIMIT, (1, 4, "2025-01-20", "delivered")),
]  # fmt: skip


def test_the_golden_set_has_at_least_fifteen_questions() -> None:
    assert len(GOLDEN) >= 15
    assert {delivery for _, delivery, *_ in GOLDEN} == {"tool", "fence", "prose"}


@pytest.mark.parametrize(
    ("question", "delivery", "sql", "row_count", "first"), GOLDEN, ids=[g[0] for g in GOLDEN]
)
async def test_a_golden_question_streams_sql_table_csv_and_summary(
    services: Services,
    question: str,
    delivery: str,
    sql: str,
    row_count: int,
    first: tuple[Any, ...] | None,
) -> None:
    items = await ask(services, question, reply(delivery, sql), SUMMARY)
    kinds = [type(i).__name__ if not isinstance(i, str) else "text" for i in items]
    assert kinds[:6] == ["Status", "Sql", "Status", "Table", "Csv", "Status"]
    assert [s.stage for s in of(items, Status)] == ["generating_sql", "running_sql", "generating"]
    assert "".join(of(items, str)) == SUMMARY
    (sql_event,) = of(items, Sql)
    assert sql_event == Sql(sql, "sqlite")

    rows, csv = expected_csv(sql)
    (table,) = of(items, Table)
    assert table.row_count == row_count == len(rows)
    assert table.truncated is (row_count == ROW_LIMIT)
    assert len(table.rows) == min(row_count, PREVIEW)
    assert table.rows[0] == first if first is not None else table.rows == ()
    assert table.rows == tuple(rows[:PREVIEW])

    (export,) = of(items, Csv)
    path = await find_export(services.store, services.settings.data_dir / "files", "alice",
                             export.url.removeprefix("/v1/files/"))  # fmt: skip
    assert path is not None
    assert path.read_bytes() == csv
    assert export.rows == row_count
    assert export.bytes == len(csv)


@pytest.mark.parametrize(
    ("statement", "columns", "first"),
    [
        ("SHOW TABLES", ("table", "rows"), ("customers", 250)),
        ("DESCRIBE orders", ("column", "type", "nullable", "key"),
         ("id", "INTEGER", "NO", "PRIMARY KEY")),
    ],
)  # fmt: skip
async def test_show_tables_and_describe_are_answered_from_the_schema(
    services: Services, statement: str, columns: tuple[str, ...], first: tuple[Any, ...]
) -> None:
    items = await ask(services, "What is in the database?", f"```sql\n{statement}\n```", SUMMARY)
    (table,) = of(items, Table)
    assert table.columns == columns
    assert table.rows[0] == first
    assert of(items, Csv)


async def test_the_model_is_given_the_schema_examples_and_the_run_sql_tool(
    services: Services,
) -> None:
    await ask(services, "How many orders?", "```sql\nSELECT COUNT(*) FROM orders\n```", SUMMARY)
    (sql_messages, sql_params), (summary_messages, summary_params) = model_of(services).requests
    system = sql_messages[0].content
    assert system.startswith(services.settings.system_prompts["sql"])
    assert "The database (SQLite):" in system
    assert "CREATE TABLE order_items (  -- 3256 rows" in system
    assert sql_messages[1:5] == [
        Message("user", "How many order items are there?"),
        Message("assistant", "```sql\nSELECT COUNT(*) FROM order_items;\n```"),
        Message("user", "Show 5 orders."),
        Message("assistant", "```sql\nSELECT * FROM orders LIMIT 5;\n```"),
    ]
    assert sql_messages[-1] == Message("user", "How many orders?")
    assert SQL_TOOL in sql_params.tools
    assert summary_params.tools == ()
    assert "Question: How many orders?" in summary_messages[-1].content
    assert "COUNT(*)\r\n1500" in summary_messages[-1].content


async def test_the_conversation_so_far_goes_between_the_examples_and_the_question(
    services: Services,
) -> None:
    history = (Message("user", "How many orders?"), Message("assistant", "1500."))
    ctx = replace(context(services, "And customers?"), history=history)
    schema = await data_source(services).schema()
    messages = build_messages(ctx, schema)
    assert messages[-3:] == [*history, Message("user", "And customers?")]
    assert services.resources[RESOURCE] is data_source(services)  # opened once per app


async def test_a_database_error_goes_back_to_the_model_which_repairs_it(
    services: Services,
) -> None:
    bad, good = "SELECT nme FROM customers", "SELECT name FROM customers LIMIT 2"
    items = await ask(services, "Names?", f"```sql\n{bad}\n```", f"```sql\n{good}\n```", SUMMARY)
    assert [s.sql for s in of(items, Sql)] == [bad, good]
    retry = [s for s in of(items, Status) if s.detail]
    assert retry == [Status("generating_sql", "attempt 2 of 2: the database refused it: "
                                              "no such column: nme")]  # fmt: skip
    assert of(items, Table)[0].row_count == 2
    second, _ = model_of(services).requests[1]
    assert second[-2] == Message("assistant", f"```sql\n{bad}\n```")
    feedback = second[-1].content
    assert feedback.startswith("That query failed: the database refused it: no such column: nme.")
    assert "customers(id, name, email, city, country, signed_up)" in feedback


async def test_a_refused_statement_goes_back_to_the_model_too(services: Services) -> None:
    items = await ask(
        services, "Clean up", "DROP TABLE customers;", tool("SELECT 1 AS one"), SUMMARY
    )
    assert [s.sql for s in of(items, Sql)] == ["DROP TABLE customers", "SELECT 1 AS one"]
    second, _ = model_of(services).requests[1]
    assert second[-1].content.startswith("That query was refused: only read-only queries")


@pytest.mark.parametrize(
    ("replies", "code", "message"),
    [
        (["DELETE FROM orders;", "DELETE FROM orders;"], "sql_refused",
         "the query was refused: only read-only queries may run (SELECT, WITH … SELECT, SHOW "
         "TABLES, DESCRIBE, EXPLAIN); this is a DELETE statement (after 2 attempts)"),
        (["SELECT x FROM nowhere;", "SELECT y FROM nowhere;"], "sql_failed",
         "the query failed: the database refused it: no such table: nowhere (after 2 attempts)"),
        (["I cannot help.", "Still no."], "sql_not_found",
         "the model's answer contained no SQL query (after 2 attempts)"),
    ],
)  # fmt: skip
async def test_after_its_retries_the_pipeline_fails_saying_what_failed(
    services: Services, replies: list[str], code: str, message: str
) -> None:
    with pytest.raises(SsechatError) as caught:
        await ask(services, "Anything", *replies)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert len(model_of(services).requests) == 2


async def test_with_no_retries_the_first_failure_ends_the_run(services: Services) -> None:
    services.settings.sql_retries = 0
    with pytest.raises(SsechatError) as caught:
        await ask(services, "Anything", "DROP TABLE orders;", "SELECT 1;")
    assert caught.value.message.endswith("this is a DROP statement")
    assert len(model_of(services).requests) == 1


async def test_an_unreachable_database_is_not_retried(services: Services) -> None:
    services.settings.sql_database_url = "sqlite:////nonexistent/shop.db"
    with pytest.raises(SsechatError) as caught:
        await ask(services, "Anything", "SELECT 1;")
    assert caught.value.code == "sql_unavailable"
    assert "no SQLite database at /nonexistent/shop.db" in caught.value.message
    assert model_of(services).requests == []


async def test_a_scripted_tool_call_is_made_only_when_the_tool_is_offered(
    services: Services,
) -> None:
    call = ScriptedToolCall(name="run_sql", arguments='{"sql": "SELECT 42 AS answer"}')
    ctx = context(services, "The answer?", tool_call=call, text="It is 42.")
    async with asyncio.timeout(10):
        items = [i async for i in get_pipeline("sql")(ctx)]
    assert of(items, Sql) == [Sql("SELECT 42 AS answer", "sqlite")]
    assert of(items, Table)[0].rows == ((42,),)
    assert "".join(of(items, str)) == "It is 42."


async def test_a_run_records_the_sql_table_and_csv_url_in_complete_and_in_the_store(
    services: Services,
) -> None:
    model_of(services).enqueue(tool("SELECT COUNT(*) AS n FROM products"), "There are 40.")
    turn = await services.store.begin_turn(
        "alice", None, "How many products?", run_id="run_1", answer_id="msg_1",
        pipeline="sql", model="scripted",
    )  # fmt: skip
    run = await services.runs.start(
        "sql", get_pipeline("sql"), context(services, "How many products?"),
        run_id="run_1", conversation_id=turn.conversation_id, message_id="msg_1",
    )  # fmt: skip
    assert run.task is not None
    async with asyncio.timeout(10):
        await run.task
    batch = await services.runs.log.read("run_1", 0, 0)
    end = batch.entries[-1][1]
    assert isinstance(end, Complete)
    assert end.sql == "SELECT COUNT(*) AS n FROM products"
    assert end.csv_url is not None
    assert end.csv_url.startswith("/v1/files/")
    assert end.text == "There are 40."
    found = await services.store.get_conversation("alice", turn.conversation_id)
    assert found is not None
    answer = found[1][-1]
    assert (answer.status, answer.sql, answer.csv_url) == ("complete", end.sql, end.csv_url)
    assert answer.sql_dialect == "sqlite"
    assert answer.csv == {"url": end.csv_url, "rows": 1, "bytes": len("n\r\n40\r\n")}
    assert answer.table_preview == {
        "columns": ["n"], "rows": [[40]], "row_count": 1, "truncated": False
    }  # fmt: skip


async def test_a_refused_run_ends_with_an_error_event_and_keeps_the_sql(
    services: Services,
) -> None:
    services.settings.sql_retries = 0
    model_of(services).enqueue("DROP TABLE customers;")
    run = await services.runs.start("sql", get_pipeline("sql"), context(services, "Drop it"))
    assert run.task is not None
    async with asyncio.timeout(10):
        await run.task
    entries = [e for _, e in (await services.runs.log.read(run.id, 0, 0)).entries]
    assert [e.type for e in entries] == ["start", "status", "sql", "error"]
    end = entries[-1]
    assert isinstance(end, Error)
    assert end.code == "sql_refused"
    assert run.sql == Sql("DROP TABLE customers", "sqlite")
