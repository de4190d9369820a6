"""What the model is told about the database: tables, columns, types, keys, sample values.

`introspect` reads it once through SQLAlchemy's inspector (the data source caches the result),
and `Schema.prompt` renders it as compact CREATE TABLE text — the form models have seen most,
with row counts and a few sample values as comments, because "status = 'cancelled'" is only
writable by a model that has seen the word 'cancelled'. The same `Schema` answers SHOW TABLES
and DESCRIBE, which neither SQLite nor PostgreSQL has.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

_SAMPLED_TYPES = ("CHAR", "TEXT", "CLOB", "STRING", "DATE", "TIME", "ENUM", "BOOL")
_SAMPLE_SCAN = 1000  # rows scanned per column for sample values: bounded on any table size
_SAMPLE_CHARS = 40


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    primary_key: bool = False
    nullable: bool = True
    references: str = ""  # "table(column)"
    samples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    columns: tuple[Column, ...]
    rows: int | None = None  # None: not counted (it took too long, or failed)


@dataclass(frozen=True, slots=True)
class Schema:
    dialect: str  # for people and models: "SQLite", "PostgreSQL"
    tables: tuple[TableInfo, ...]

    def find(self, name: str) -> TableInfo | None:
        """The table called `name` (case-insensitive, schema prefix ignored)."""
        wanted = name.rsplit(".", 1)[-1].strip('"`[]').lower()
        return next((t for t in self.tables if t.name.lower() == wanted), None)

    def prompt(self, max_chars: int = 12_000) -> str:
        """The schema as CREATE TABLE text, within `max_chars` (samples go first, then tables)."""
        text = "\n".join(_create_table(t) for t in self.tables)
        if len(text) <= max_chars:
            return text
        bare = [
            replace(t, columns=tuple(replace(c, samples=()) for c in t.columns))
            for t in self.tables
        ]
        kept: list[str] = []
        for i, table in enumerate(bare):
            block = _create_table(table)
            if sum(len(k) + 1 for k in kept) + len(block) > max_chars - 80:
                kept.append(f"-- … and {len(bare) - i} more tables (SHOW TABLES lists them)")
                break
            kept.append(block)
        return "\n".join(kept)

    def tables_result(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """SHOW TABLES: one row per table."""
        return ("table", "rows"), [(t.name, t.rows) for t in self.tables]

    def columns_result(self, table: TableInfo) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """DESCRIBE: one row per column."""
        rows = [(c.name, c.type, "YES" if c.nullable else "NO", _key(c)) for c in table.columns]
        return ("column", "type", "nullable", "key"), rows


def introspect(conn: sa.Connection, *, allowed: frozenset[str] | None, samples: int = 3) -> Schema:
    """Read the schema of the connection's default schema (tables and views)."""
    inspector = sa.inspect(conn)
    names = [*inspector.get_table_names(), *inspector.get_view_names()]
    if allowed is not None:
        names = [n for n in names if n.lower() in allowed]
    tables = [_reflect(inspector, name) for name in sorted(names, key=str.lower)]
    # Counts and samples are a help, not a need: the structure alone is enough to go on.
    with suppress(SQLAlchemyError):
        tables = [_with_data(conn, table, samples) for table in tables]
    return Schema(_dialect_name(conn.dialect.name), tuple(tables))


def _reflect(inspector: Any, name: str) -> TableInfo:
    primary = set(inspector.get_pk_constraint(name).get("constrained_columns") or ())
    references: dict[str, str] = {}
    for fk in inspector.get_foreign_keys(name):
        for local, remote in zip(fk["constrained_columns"], fk["referred_columns"], strict=False):
            references[local] = f"{fk['referred_table']}({remote})"
    columns = tuple(
        Column(
            name=col["name"],
            type=_type_name(col["type"]),
            primary_key=col["name"] in primary,
            nullable=bool(col.get("nullable", True)) and col["name"] not in primary,
            references=references.get(col["name"], ""),
        )
        for col in inspector.get_columns(name)
    )
    return TableInfo(name, columns)


def _with_data(conn: sa.Connection, table: TableInfo, samples: int) -> TableInfo:
    source = sa.table(table.name, *(sa.column(c.name) for c in table.columns))
    rows = conn.execute(sa.select(sa.func.count()).select_from(source)).scalar_one()
    columns = []
    for col in table.columns:
        if samples and _sampled(col):
            column = source.c[col.name]
            scan = sa.select(column).where(column.is_not(None)).limit(_SAMPLE_SCAN).subquery()
            query = sa.select(scan.c[col.name]).distinct().limit(samples)
            values = tuple(_sample(v) for v in conn.execute(query).scalars())
            col = replace(col, samples=values)
        columns.append(col)
    return replace(table, columns=tuple(columns), rows=int(rows))


def _sampled(col: Column) -> bool:
    return (
        not col.primary_key
        and not col.references
        and any(word in col.type.upper() for word in _SAMPLED_TYPES)
    )


def _sample(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…"


def _create_table(table: TableInfo) -> str:
    lines = []
    for i, col in enumerate(table.columns):
        line = f"  {_quote(col.name)} {col.type}".rstrip()
        if col.primary_key:
            line += " PRIMARY KEY"
        if col.references:
            line += f" REFERENCES {col.references}"
        if i < len(table.columns) - 1:
            line += ","
        if col.samples:
            line += "  -- e.g. " + ", ".join(_literal(s) for s in col.samples)
        lines.append(line)
    count = f"  -- {table.rows} rows" if table.rows is not None else ""
    return f"CREATE TABLE {_quote(table.name)} ({count}\n" + "\n".join(lines) + "\n);"


def _key(col: Column) -> str:
    if col.primary_key:
        return "PRIMARY KEY"
    return f"REFERENCES {col.references}" if col.references else ""


def _quote(name: str) -> str:
    return name if name.isidentifier() else '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _type_name(type_: Any) -> str:
    try:
        return str(type_)
    except Exception:  # some reflected types cannot be rendered without a dialect
        return type(type_).__name__.upper()


def _dialect_name(name: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(name, name)
