"""Text-to-SQL, done safely: find the SQL in a model's answer, decide whether it may run,
run it on a read-only connection with a row cap and a time limit, export the result.

- `extract`: the SQL of an answer (tool call, ```sql block, statement patterns, keywords);
- `guard`: one read-only statement, denied functions, allowed tables, the row LIMIT;
- `schema`: what the model is told about the database (and SHOW TABLES / DESCRIBE);
- `execute`: `DataSource`, the database opened read-only (SQLite, PostgreSQL);
- `export`: the CSV file only its owner can download, until it expires.

The `sql` pipeline (`ssechat.pipelines.sql`) puts them together; docs/sql.md tells the story.
"""

from __future__ import annotations

from ssechat.sqlguard.execute import DataSource, Result, SqlFailed
from ssechat.sqlguard.extract import NoSqlFound, extract_sql
from ssechat.sqlguard.guard import Checked, Policy, SqlRefused, check
from ssechat.sqlguard.schema import Schema

__all__ = [
    "Checked",
    "DataSource",
    "NoSqlFound",
    "Policy",
    "Result",
    "Schema",
    "SqlFailed",
    "SqlRefused",
    "check",
    "extract_sql",
]
