"""The `sql` pipeline: the question → the model writes SQL → the guard → the database →
`sql`, `table`, `csv` → the model sums the result up in a sentence or two.

    status generating_sql → sql → status running_sql → table → csv → status generating
    → the summary as deltas (the run then adds metadata and complete, with sql and csv_url)

The model sees the system prompt (`system_prompts["sql"]`), the database's dialect and schema,
two worked examples in the ```sql form (built from the schema's own tables: they are what makes
a 135M model answer in that form at all), the conversation so far and the question. It is also
offered a `run_sql` tool; backends without tools answer in text, and `extract_sql` reads both.

Self-repair: a statement the guard refuses, a database error, a timeout or an answer with no
SQL in it goes back to the model as the next turn ("That query failed: …"), up to
`sql_retries` times; then the run ends with an `error` event whose code says which
(`sql_refused`, `sql_failed`, `sql_not_found`, or `sql_unavailable` when the database itself
is unreachable, which no retry mends). Each attempt's SQL is sent as a `sql` event as soon as
it is known, so a client sees what was refused; `complete.sql` is the one that ran.

The text the model writes while producing SQL is not streamed: the SQL is the `sql` event, and
the answer — `complete.text` — is the summary alone.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from ssechat.errors import PipelineError, SsechatError
from ssechat.events import Csv, Event, Sql, Status, Table
from ssechat.models import GenerationParams, Message, ModelBackend, Tool, ToolCall
from ssechat.pipelines import Context, register_pipeline
from ssechat.services import Services
from ssechat.sqlguard.execute import DataSource, Result, SqlFailed
from ssechat.sqlguard.export import csv_bytes, export_csv, json_cell
from ssechat.sqlguard.extract import TOOL_NAME, NoSqlFound, extract_sql
from ssechat.sqlguard.guard import SqlRefused, check
from ssechat.sqlguard.schema import Schema

RESOURCE = "sqlguard.source"  # the app's DataSource in `Services.resources`
SQL_TOOL = Tool(
    name=TOOL_NAME,
    description="Run one read-only SQL query on the database. The user sees its result as a "
    "table and a CSV file.",
    parameters={
        "type": "object",
        "properties": {"sql": {"type": "string", "description": "One SELECT statement."}},
        "required": ["sql"],
    },
)
SUMMARY_PROMPT = "You are a concise assistant. Answer the question in one sentence from the result."
_SUMMARY_ROWS = 10
_SUMMARY_CHARS = 2000
_REPAIRABLE = (SqlRefused, SqlFailed, NoSqlFound)


@register_pipeline("sql")
async def sql(ctx: Context) -> AsyncGenerator[Event | str, None]:
    if ctx.services is None:
        raise PipelineError("the sql pipeline needs an app's services (settings and store)")
    settings = ctx.services.settings
    yield Status("generating_sql")
    source = data_source(ctx.services)
    schema = await source.schema()
    messages = build_messages(ctx, schema)
    params = ctx.params.model_copy(update={"tools": (*ctx.params.tools, SQL_TOOL)})
    attempts = settings.sql_retries + 1
    for attempt in range(1, attempts + 1):
        text, calls = await _ask(ctx.model, messages, params)
        statement = extract_sql(text, calls)
        try:
            if statement is None:
                raise NoSqlFound("the model's answer contained no SQL query")
            yield Sql(statement, source.dialect)
            checked = check(statement, source.policy)
            yield Status("running_sql")
            result = await source.run(checked)
            break
        except _REPAIRABLE as exc:
            if exc.code == "sql_unavailable" or attempt == attempts:
                raise _gave_up(exc, attempt) from None
            messages += [
                Message("assistant", text or f"```sql\n{statement}\n```"),
                Message("user", _feedback(exc, schema, statement or "")),
            ]
            yield Status("generating_sql", f"attempt {attempt + 1} of {attempts}: {exc.message}")
    preview = result.rows[: settings.sql_preview_rows]
    yield Table(
        result.columns,
        tuple(tuple(json_cell(v) for v in row) for row in preview),
        len(result.rows),
        result.truncated,
    )
    exported = await export_csv(
        ctx.services.store,
        settings.data_dir / "files",
        ctx.user,
        result.columns,
        result.rows,
        expires_in=settings.file_expiry,
        run_id=ctx.run_id or None,
    )
    yield Csv(exported.url, exported.rows, exported.bytes)
    yield Status("generating")
    summary = settings.system_prompts.get("sql_summary", SUMMARY_PROMPT)
    request = summary_messages(summary, ctx.question, statement or "", result)
    async with aclosing(ctx.model.stream(request, _without_tools(ctx.params))) as deltas:
        async for delta in deltas:
            if delta.text:
                yield delta.text


def data_source(services: Services) -> DataSource:
    """The app's data source, opened on first use from its settings and closed with the app."""
    found = services.resources.get(RESOURCE)
    if not isinstance(found, DataSource):
        s = services.settings
        found = DataSource(
            s.sql_database_url,
            timeout=s.sql_timeout,
            row_limit=s.sql_row_limit,
            allowed_tables=s.sql_allowed_tables,
        )
        services.resources[RESOURCE] = found
    return found


def build_messages(ctx: Context, schema: Schema) -> list[Message]:
    """System prompt with the schema, two worked examples, the history, the question."""
    system = f"{ctx.system_prompt}\n\nThe database ({schema.dialect}):\n{schema.prompt()}".strip()
    return [
        Message("system", system),
        *examples(schema),
        *ctx.history,
        Message("user", ctx.question),
    ]


def examples(schema: Schema) -> list[Message]:
    """A count over the biggest table and a sample of the next: true of any schema."""
    tables = sorted(schema.tables, key=lambda t: -(t.rows or 0))
    if not tables:
        return []
    first, second = tables[0], tables[1 if len(tables) > 1 else 0]
    return [
        Message("user", f"How many {_words(first.name)} are there?"),
        Message("assistant", f"```sql\nSELECT COUNT(*) FROM {_ident(first.name)};\n```"),
        Message("user", f"Show 5 {_words(second.name)}."),
        Message("assistant", f"```sql\nSELECT * FROM {_ident(second.name)} LIMIT 5;\n```"),
    ]


def summary_messages(prompt: str, question: str, statement: str, result: Result) -> list[Message]:
    shown = result.rows[:_SUMMARY_ROWS]
    table = csv_bytes(result.columns, shown).decode()[:_SUMMARY_CHARS].strip()
    size = f"{len(result.rows)}{'+' if result.truncated else ''} rows"
    if len(shown) < len(result.rows):
        size += f", the first {len(shown)} shown"
    user = (
        f"Question: {question}\nSQL: {statement}\nResult ({size}):\n{table}\n\n"
        "Answer the question from the result."
    )
    return [Message("system", prompt), Message("user", user)]


async def _ask(
    model: ModelBackend, messages: Sequence[Message], params: GenerationParams
) -> tuple[str, tuple[ToolCall, ...]]:
    text: list[str] = []
    calls: list[ToolCall] = []
    async with aclosing(model.stream(messages, params)) as deltas:
        async for delta in deltas:
            text.append(delta.text)
            calls.extend(delta.tool_calls)
    return "".join(text), tuple(calls)


def _feedback(exc: SsechatError, schema: Schema, statement: str) -> str:
    """The next user turn after a failed attempt: what went wrong, and the columns of the
    tables it named (or of all tables), since a wrong name is the commonest mistake."""
    if isinstance(exc, NoSqlFound):
        return "Your answer had no SQL query. Reply with one query in a ```sql block."
    named = [t for t in schema.tables if re.search(rf"\b{re.escape(t.name)}\b", statement, re.I)]
    columns = "; ".join(
        f"{t.name}({', '.join(c.name for c in t.columns)})" for t in named or schema.tables
    )
    what = "was refused" if isinstance(exc, SqlRefused) else "failed"
    return (
        f"That query {what}: {exc.message}. The tables and their columns: {columns}. "
        "Write one corrected SELECT query in a ```sql block."
    )


def _gave_up(exc: SsechatError, attempts: int) -> SsechatError:
    tries = "" if attempts == 1 else f" (after {attempts} attempts)"
    what = {"sql_refused": "the query was refused", "sql_failed": "the query failed"}.get(exc.code)
    message = f"{what}: {exc.message}" if what else exc.message
    return type(exc)(message + tries, code=exc.code)


def _without_tools(params: GenerationParams) -> GenerationParams:
    return params.model_copy(update={"tools": ()}) if params.tools else params


def _words(name: str) -> str:
    return name.replace("_", " ")


def _ident(name: str) -> str:
    return name if name.isidentifier() else '"' + name.replace('"', '""') + '"'
