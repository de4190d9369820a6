"""Exported files: a query's result as CSV in `data_dir/files`, owned by one user, expiring.

A file's name is 32 random URL-safe characters (`secrets.token_urlsafe(24)`, 192 bits) plus
`.csv`, and its URL is `/v1/files/<name>`; but the name is not the key to it: the `files` row
is, and `find_export` answers only for the owner and before `expires_at` (everything else is a
404, as for a name that never existed). Expired files are swept — rows and bytes — whenever a
new one is written, so no timer task is needed.

The CSV is RFC 4180 (`\\r\\n` line ends, quotes doubled), UTF-8 without a BOM; NULL is an empty
cell, booleans `true`/`false`, bytes hex, dates ISO 8601. A text cell that a spreadsheet would
run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
`'`, as OWASP advises against CSV injection: query results are data that users open in Excel.
Numbers are written as numbers, so `-5` stays `-5`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from ssechat.store import Store
from ssechat.store.tables import File, User, utcnow

MEDIA_TYPE = "text/csv; charset=utf-8"
URL_PREFIX = "/v1/files/"
_NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.csv$")


@dataclass(frozen=True, slots=True)
class Exported:
    name: str
    url: str
    rows: int
    bytes: int


def csv_bytes(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """The rows as CSV, with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # excel dialect: RFC 4180 quoting, \r\n
    writer.writerow([_inert(c) for c in columns])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode()


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return _inert(value) if isinstance(value, str) else str(value)


def _inert(text: str) -> str:
    return "'" + text if text[:1] in _FORMULA_STARTS else text


_FORMULA_STARTS = frozenset("=+-@\t\r")


def json_cell(value: Any) -> Any:
    """A value for the `table` event's JSON: numbers stay numbers where JSON can hold them."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    return csv_cell(value)


async def export_csv(
    store: Store,
    files_dir: Path,
    user: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    expires_in: float,
    run_id: str | None = None,
) -> Exported:
    """Write the rows as a CSV that only `user` can download for `expires_in` seconds."""
    data = await asyncio.to_thread(csv_bytes, columns, rows)
    name = secrets.token_urlsafe(24) + ".csv"
    path = files_dir / name
    await asyncio.to_thread(_write_private, path, data)
    now = utcnow()
    try:
        async with store.begin() as s:
            if await s.get(User, user) is None:
                s.add(User(id=user))
                await s.flush()
            s.add(
                File(
                    name=name,
                    user_id=user,
                    run_id=run_id,
                    media_type=MEDIA_TYPE,
                    bytes=len(data),
                    rows=len(rows),
                    created_at=now,
                    expires_at=now + timedelta(seconds=expires_in),
                )
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    await sweep(store, files_dir)
    return Exported(name, URL_PREFIX + name, len(rows), len(data))


async def find_export(store: Store, files_dir: Path, user: str, name: str) -> Path | None:
    """The file's path if `user` owns it and it has not expired; else None."""
    if not _NAME.match(name):
        return None
    async with store.read() as s:
        found = await s.scalar(
            select(File.name).where(
                File.name == name, File.user_id == user, File.expires_at > utcnow()
            )
        )
    path = files_dir / name
    return path if found is not None and path.is_file() else None


async def sweep(store: Store, files_dir: Path) -> int:
    """Delete expired files (rows, then bytes); return how many."""
    async with store.begin() as s:
        names = list(await s.scalars(select(File.name).where(File.expires_at <= utcnow())))
        if names:
            await s.execute(delete(File).where(File.name.in_(names)))
    for name in names:
        (files_dir / name).unlink(missing_ok=True)
    return len(names)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
