"""The guard: decide whether a statement may run, and rewrite it into what will run.

A statement passes only if, parsed by sqlglot in the data source's dialect, it is exactly one
read-only query (SELECT, a set operation, WITH … SELECT; EXPLAIN of one), with no node that
writes or changes the session anywhere inside it (a data-modifying CTE, SELECT … INTO, FOR
UPDATE), no denied function (sleeping, files, extensions, server administration, session
settings, SQL run from a string), and only allow-listed tables when a list is set. SHOW TABLES,
SHOW COLUMNS and DESCRIBE, which neither SQLite nor PostgreSQL have, are answered from the
introspected schema instead of running.

What runs is the statement regenerated from the checked syntax tree (comments dropped, the
row LIMIT applied), never the model's text: what was checked is what runs. This guard is the
first of three walls — the connection itself is read-only (`execute.py`) and, for SQLite, an
authorizer denies every action but reading — so a parser gap here is not a hole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from ssechat.errors import SsechatError


class SqlRefused(SsechatError):
    """The guard refused a statement; the message says why (and goes back to the model)."""

    code = "sql_refused"


# Functions that sleep, touch files or the network, load code, administer the server, change
# settings or run SQL from a string. Names are compared lower-case; prefixes cover families.
DENIED_FUNCTIONS = frozenset(
    {
        # SQLite
        "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile",
        "fsdir", "sqlite_dbpage", "sqlite_dbdata", "sqlar_compress", "sqlar_uncompress",
        # PostgreSQL
        "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_terminate_backend",
        "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
        "pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_backup_stop",
        "pg_start_backup", "pg_stop_backup", "pg_stat_file", "pg_notify", "set_config",
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
        "cursor_to_xmlschema", "database_to_xml", "database_to_xmlschema",
        "database_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xml_and_xmlschema",
        "nextval", "setval", "txid_current", "pg_current_xact_id", "pg_import_system_collations",
        "pg_logical_emit_message", "pg_log_backend_memory_contexts", "pg_stat_reset",
        # MySQL-isms a model may try anywhere
        "sleep", "benchmark", "load_file", "get_lock", "release_lock",
    }
)  # fmt: skip
DENIED_PREFIXES = (
    "pg_read_", "pg_ls_", "pg_file_", "pg_advisory", "pg_try_advisory", "pg_replication_",
    "pg_create_", "pg_drop_", "pg_copy_", "pg_logical_", "pg_stat_reset", "lo_", "dblink",
    "pragma_",
)  # fmt: skip
# SQLite's table-valued pragmas work without parentheses too: `FROM pragma_database_list`.
DENIED_TABLE_PREFIXES = ("pragma_", "sqlite_dbpage", "sqlite_dbdata")

# Nodes that write, change the session or lock, wherever they appear in a query.
_WRITES: tuple[type, ...] = (
    exp.DML, exp.DDL, exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop,
    exp.Alter, exp.TruncateTable, exp.Command, exp.Pragma, exp.Attach, exp.Detach,
    exp.Transaction, exp.Commit, exp.Rollback, exp.Set, exp.Into, exp.Lock, exp.Copy,
    exp.Analyze, exp.Use, exp.LoadData, exp.Grant, exp.Revoke, exp.Kill, exp.Describe,
    exp.Cache, exp.Uncache, exp.Refresh, exp.Declare, exp.Execute, exp.Comment,
)  # fmt: skip

_FORMATTERS = frozenset({"printf", "format"})
_WIDE_FORMAT = re.compile(r"%[-+ 0#,!]*(?:\*|\d{4,})|%[-+ 0#,!]*\d*\.(?:\*|\d{4,})")
_NAME = r'"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w.]+'
_SHOW_TABLES = re.compile(r"^\s*SHOW\s+(?:FULL\s+)?TABLES\s*;?\s*$", re.I)
_SHOW_COLUMNS = re.compile(
    rf"^\s*SHOW\s+(?:FULL\s+)?(?:COLUMNS|FIELDS)\s+(?:FROM|IN)\s+(?P<name>{_NAME})\s*;?\s*$", re.I
)
_DESCRIBE = re.compile(rf"^\s*(?:DESCRIBE|DESC)\s+(?:TABLE\s+)?(?P<name>{_NAME})\s*;?\s*$", re.I)
_SHOW = re.compile(r"^\s*SHOW\b", re.I)
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:QUERY\s+PLAN\s+)?(?P<rest>.*)$", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Policy:
    """What the guard allows. `dialect` is sqlglot's name (`sqlite`, `postgres`)."""

    dialect: str = "sqlite"
    row_limit: int = 10_000
    allowed_tables: frozenset[str] | None = None  # lower-case names; None: every table


@dataclass(frozen=True, slots=True)
class Checked:
    """A statement that passed: a `query` to run as `sql`, or a question about the schema
    (`tables`: SHOW TABLES; `columns` of `table`: DESCRIBE / SHOW COLUMNS)."""

    kind: Literal["query", "tables", "columns"]
    sql: str = ""
    table: str = ""


def check(sql: str, policy: Policy) -> Checked:
    """Return what may run for `sql`, or raise `SqlRefused` saying why it may not."""
    statement = sql.strip()
    if not statement:
        raise SqlRefused("the statement is empty")
    if _SHOW_TABLES.match(statement):
        return Checked("tables")
    if match := _SHOW_COLUMNS.match(statement) or _DESCRIBE.match(statement):
        table = match.group("name").strip('"`[]')
        _check_table(table.rsplit(".", 1)[-1], policy)
        return Checked("columns", table=table)
    if _SHOW.match(statement):
        raise SqlRefused(
            "only SHOW TABLES and SHOW COLUMNS FROM <table> are supported (from the schema)"
        )
    if match := _EXPLAIN.match(statement):
        rest = match.group("rest")
        if re.match(r"\s*(ANALY[SZ]E|\()", rest, re.I):
            raise SqlRefused("EXPLAIN ANALYZE and EXPLAIN options are not allowed: they run it")
        inner = check(rest, policy)
        if inner.kind != "query":
            raise SqlRefused("EXPLAIN needs a SELECT query")
        explain = "EXPLAIN QUERY PLAN" if policy.dialect == "sqlite" else "EXPLAIN"
        return Checked("query", f"{explain} {inner.sql}")
    return Checked("query", _check_query(statement, policy))


def _check_query(sql: str, policy: Policy) -> str:
    _check_tokens(sql, policy.dialect)
    try:
        parsed = sqlglot.parse(sql, read=policy.dialect)
    except SqlglotError as exc:
        raise SqlRefused(f"the SQL could not be parsed: {_first_line(exc)}") from exc
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise SqlRefused("there is no statement")
    if len(statements) > 1:
        raise SqlRefused(f"exactly one statement may run; this is {len(statements)} statements")
    root = statements[0]
    if isinstance(root, exp.Subquery):
        root = root.unnest()
    if not isinstance(root, exp.Select | exp.SetOperation):
        raise SqlRefused(
            f"only read-only queries may run (SELECT, WITH … SELECT, SHOW TABLES, DESCRIBE, "
            f"EXPLAIN); this is {_kind(root)}"
        )
    for node in root.walk():
        if isinstance(node, _WRITES):
            raise SqlRefused(f"the query contains {_kind(node)}, which is not read-only")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if _denied(name):
                raise SqlRefused(f"the function {name}() is not allowed")
    _check_tables(root, policy)
    limited = _with_row_limit(root, policy.row_limit + 1)  # +1: tells a cut result from a full one
    rendered = limited.sql(dialect=policy.dialect, comments=False)
    if len(sqlglot.parse(rendered, read=policy.dialect)) != 1:  # pragma: no cover - paranoia
        raise SqlRefused("the query did not survive rewriting as one statement")
    return rendered


def _check_tokens(sql: str, dialect: str) -> None:
    """Denied names on the raw tokens too: however the parser classifies a call (a typed
    function, an anonymous one, a table function), `name(` or a pragma table is refused."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(sql)
    except SqlglotError as exc:
        raise SqlRefused(f"the SQL could not be parsed: {_first_line(exc)}") from exc
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.STRING:
            continue
        name = token.text.lower()
        called = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN
        if called and _denied(name):
            raise SqlRefused(f"the function {name}() is not allowed")
        if called and name in _FORMATTERS:
            _check_format(tokens[i + 2] if i + 2 < len(tokens) else None, name)
        if name.startswith(DENIED_TABLE_PREFIXES):
            raise SqlRefused(f"{name} is not allowed")


def _check_format(first: Any, name: str) -> None:
    """printf('%.*c', 1000000000, 'x') builds its string inside one C call, where no time
    limit reaches: formats must be literal, with widths and precisions under 1000."""
    if first is None or first.token_type != TokenType.STRING:
        raise SqlRefused(f"{name}() needs a literal format string")
    if _WIDE_FORMAT.search(first.text):
        raise SqlRefused(f"{name}() widths and precisions must be literal and under 1000")


def _check_tables(root: exp.Expression, policy: Policy) -> None:
    ctes = {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}
    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function, e.g. generate_series(1, 10): checked as a function
        name = table.name.lower()
        if name.startswith(DENIED_TABLE_PREFIXES):
            raise SqlRefused(f"{name} is not allowed")
        if name in ctes and not table.db:
            continue
        _check_table(name, policy, schema=table.db)


def _check_table(name: str, policy: Policy, *, schema: str = "") -> None:
    allowed = policy.allowed_tables
    if allowed is None:
        return
    default_schema = "main" if policy.dialect == "sqlite" else "public"
    if name.lower() not in allowed or schema.lower() not in ("", default_schema):
        shown = f"{schema}.{name}" if schema else name
        raise SqlRefused(
            f"table {shown} is not one the assistant may query (allowed: "
            f"{', '.join(sorted(allowed))})"
        )


def _with_row_limit(root: exp.Query, cap: int) -> exp.Query:
    """The query with at most `cap` rows: its own LIMIT if smaller, else `cap`."""
    limit = root.args.get("limit")
    if limit is None:
        root.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
        return root
    count = limit.args.get("expression") if isinstance(limit, exp.Limit) else None
    if isinstance(count, exp.Literal) and not count.is_string and count.this.isdigit():
        if int(count.this) > cap:
            limit.set("expression", exp.Literal.number(cap))
        return root
    # A computed LIMIT or a FETCH clause: bound it from outside.
    return exp.select("*").from_(root.subquery("ssechat_limited")).limit(cap)


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def _denied(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def _kind(node: Any) -> str:
    if isinstance(node, exp.Into):
        return "SELECT … INTO (it creates a table)"
    if isinstance(node, exp.Lock):
        return "a row lock (FOR UPDATE/SHARE)"
    word = str(node.this if isinstance(node, exp.Command) else node.key).upper()
    return f"{'an' if word[:1] in 'AEIOU' else 'a'} {word} statement"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
