"""Find the SQL in a model's answer, in the order seed 000 trusts the sources:

1. the arguments of a `run_sql` tool call (`{"sql": …}`), when the backend supports tools;
2. a fenced ```sql block (the whole block: a second statement in it is the guard's to refuse,
   not ours to drop silently);
3. a statement pattern: SELECT … FROM, WITH … AS (…), SHOW …, DESCRIBE/DESC …, EXPLAIN …,
   anywhere in the text, up to a semicolon or a blank line;
4. a keyword fallback: the first line that starts with any SQL keyword, write statements
   included — so that a `DROP TABLE` the model wrote is refused by the guard with a reason,
   instead of being reported as "no SQL found".

Extraction decides nothing about safety: everything found goes through `guard.check`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from ssechat.errors import SsechatError
from ssechat.models import ToolCall

TOOL_NAME = "run_sql"


class NoSqlFound(SsechatError):
    """The model's answer held no SQL to run."""

    code = "sql_not_found"


_FENCED_SQL = re.compile(r"```[ \t]*sql[ \t]*\r?\n?(?P<body>.*?)(?:```|\Z)", re.I | re.S)
# A bare ``` fence counts when its content starts like a statement.
_FENCED = re.compile(r"```[ \t]*\r?\n(?P<body>.*?)(?:```|\Z)", re.S)
_END = r"(?=;|\n[ \t]*\n|```|\Z)"
_PATTERNS = (
    re.compile(r"\bSELECT\b.+?\bFROM\b.+?" + _END, re.S),
    re.compile(r"\bWITH\s+(?:RECURSIVE\s+)?\w+.*?\bAS\s*\(.+?" + _END, re.S),
    re.compile(r"\bSHOW\s+(?:FULL\s+)?(?:TABLES|COLUMNS\s+(?:FROM|IN)\s+[\w.\"`]+)", re.S),
    re.compile(r"\b(?:DESCRIBE|DESC)\s+[\w.\"`]+(?=\s*(?:;|$))", re.M),
    re.compile(r"\bEXPLAIN\s+(?:QUERY\s+PLAN\s+)?(?:SELECT|WITH)\b.+?" + _END, re.S),
    # Lower-case SQL is common; requiring it at a line start keeps prose ("select a
    # product from the list") out.
    re.compile(r"^[ \t]*select\b.+?\bfrom\b.+?" + _END, re.S | re.M | re.I),
    re.compile(r"^[ \t]*with\s+(?:recursive\s+)?\w+.*?\bas\s*\(.+?" + _END, re.S | re.M | re.I),
)
_KEYWORDS = (
    "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "INSERT", "UPDATE",
    "DELETE", "REPLACE", "MERGE", "UPSERT", "DROP", "CREATE", "ALTER", "TRUNCATE", "ATTACH",
    "DETACH", "PRAGMA", "VACUUM", "REINDEX", "ANALYZE", "GRANT", "REVOKE", "SET", "COPY",
    "CALL", "EXEC", "EXECUTE", "BEGIN", "COMMIT", "ROLLBACK", "LOAD",
)  # fmt: skip
_KEYWORD_LINE = re.compile(
    r"^[ \t]*(?:" + "|".join(_KEYWORDS) + r")\b.*?" + _END, re.S | re.M | re.I
)
_STATEMENT_START = re.compile(r"^\s*(?:" + "|".join(_KEYWORDS) + r")\b", re.I)


def extract_sql(text: str, tool_calls: Sequence[ToolCall] = ()) -> str | None:
    """The SQL the model meant to run, or None if its answer holds none."""
    for source in (_from_tool_calls(tool_calls), _from_fence(text), _from_patterns(text)):
        if source:
            return source
    return _from_keywords(text)


def _clean(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def _from_tool_calls(calls: Sequence[ToolCall]) -> str | None:
    for call in calls:
        if call.name != TOOL_NAME:
            continue
        try:
            arguments = orjson.loads(call.arguments or "{}")
        except orjson.JSONDecodeError:
            continue
        if isinstance(arguments, dict):
            for key in ("sql", "query"):
                value = arguments.get(key)
                if isinstance(value, str) and value.strip():
                    return _clean(value)
    return None


def _from_fence(text: str) -> str | None:
    for match in _FENCED_SQL.finditer(text):
        if body := _clean(match.group("body")):
            return body
    for match in _FENCED.finditer(text):
        body = _clean(match.group("body"))
        if body and _STATEMENT_START.match(body):
            return body
    return None


def _from_patterns(text: str) -> str | None:
    found = [m for pattern in _PATTERNS if (m := pattern.search(text))]
    if not found:
        return None
    first = min(found, key=lambda m: m.start())  # the statement the answer gives first
    return _clean(first.group(0)) or None


def _from_keywords(text: str) -> str | None:
    match = _KEYWORD_LINE.search(text)
    return (_clean(match.group(0)) or None) if match else None
