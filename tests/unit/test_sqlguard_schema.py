"""What the model is told about the database (ssechat.sqlguard.schema)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from ssechat.sqlguard.execute import SAMPLE_DATABASE
from ssechat.sqlguard.schema import Column, Schema, TableInfo, introspect


def sample_schema(allowed: frozenset[str] | None = None) -> Schema:
    engine = sa.create_engine(f"sqlite:///{SAMPLE_DATABASE}")
    try:
        with engine.connect() as conn:
            return introspect(conn, allowed=allowed)
    finally:
        engine.dispose()


def test_the_prompt_has_tables_types_keys_counts_and_sample_values() -> None:
    prompt = sample_schema().prompt()
    assert "CREATE TABLE orders (  -- 1500 rows" in prompt
    assert "  id INTEGER PRIMARY KEY," in prompt
    assert "  customer_id INTEGER REFERENCES customers(id)," in prompt
    assert "  status TEXT  -- e.g. 'delivered', 'cancelled', 'shipped'" in prompt
    assert "category TEXT,  -- e.g. 'Books', 'Electronics', 'Kitchen'" in prompt


def test_keys_and_numbers_get_no_sample_values() -> None:
    orders = sample_schema().find("orders")
    assert orders is not None
    samples = {c.name: c.samples for c in orders.columns}
    assert samples["id"] == ()
    assert samples["customer_id"] == ()
    assert len(samples["status"]) == 3


def test_the_allow_list_limits_what_is_introspected() -> None:
    schema = sample_schema(frozenset({"products"}))
    assert [t.name for t in schema.tables] == ["products"]


def test_find_ignores_case_quotes_and_schema_prefixes() -> None:
    schema = sample_schema()
    assert schema.find('main."Orders"') is schema.find("orders") is not None
    assert schema.find("nope") is None


def test_a_long_schema_drops_samples_first_then_tables() -> None:
    columns = tuple(Column(f"col{i}", "TEXT", samples=("x" * 30,)) for i in range(10))
    schema = Schema("SQLite", tuple(TableInfo(f"t{i}", columns, 1) for i in range(40)))
    full = "\n".join(schema.prompt(max_chars=10**6).splitlines())
    assert len(full) > 12_000
    assert "e.g." in full
    default = schema.prompt()  # samples dropped, every table kept
    assert "e.g." not in default
    assert default.count("CREATE TABLE") == 40
    short = schema.prompt(max_chars=2_000)
    assert len(short) <= 2_000
    assert "e.g." not in short
    assert "more tables (SHOW TABLES lists them)" in short


def test_odd_names_are_quoted_in_the_prompt(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE "order lines" ("unit price" REAL, note TEXT)')
        conn.execute("INSERT INTO \"order lines\" VALUES (1.5, 'it''s')")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        prompt = introspect(conn, allowed=None).prompt()
    engine.dispose()
    assert 'CREATE TABLE "order lines" (  -- 1 rows' in prompt
    assert '"unit price" REAL,' in prompt
    assert "note TEXT  -- e.g. 'it''s'" in prompt
