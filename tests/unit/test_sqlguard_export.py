"""Exported CSV files (ssechat.sqlguard.export): bytes, ownership, expiry."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from ssechat.sqlguard.export import csv_bytes, export_csv, find_export, json_cell, sweep
from ssechat.store import Store, sqlite_url
from ssechat.store.tables import File, utcnow


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url(tmp_path))
    yield opened
    await opened.close()


def test_csv_is_rfc_4180_with_a_header() -> None:
    rows = [(1, 'say "hi"', None), (2, "a,b", "line\nbreak")]
    assert csv_bytes(("id", "text", "note"), rows) == (
        b'id,text,note\r\n1,"say ""hi""",\r\n2,"a,b","line\nbreak"\r\n'
    )


def test_csv_cells_are_plain_text_for_every_type() -> None:
    row = (True, b"\x01\xff", date(2024, 1, 2), datetime(2024, 1, 2, 3, 4), Decimal("1.10"), 0.5)
    assert csv_bytes(("a", "b", "c", "d", "e", "f"), [row]).splitlines()[1] == (
        b"true,01ff,2024-01-02,2024-01-02T03:04:00,1.10,0.5"
    )


def test_table_cells_stay_json_numbers_where_json_can_hold_them() -> None:
    assert json_cell(Decimal("2.50")) == 2.5
    assert json_cell(float("nan")) == "nan"
    assert json_cell(date(2024, 1, 2)) == "2024-01-02"
    assert json_cell(b"\x00") == "00"
    assert json_cell(None) is None


async def test_an_export_is_a_private_unguessable_file_for_its_owner(
    store: Store, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    exported = await export_csv(store, files, "alice", ("n",), [(1,), (2,)], expires_in=60)
    assert exported.url == f"/v1/files/{exported.name}"
    assert len(exported.name) == 36  # 32 random characters (192 bits) + ".csv"
    assert exported.rows == 2
    path = files / exported.name
    assert path.read_bytes() == b"n\r\n1\r\n2\r\n"
    assert exported.bytes == 9
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert await find_export(store, files, "alice", exported.name) == path


async def test_another_user_or_a_made_up_name_finds_nothing(store: Store, tmp_path: Path) -> None:
    files = tmp_path / "files"
    exported = await export_csv(store, files, "alice", ("n",), [(1,)], expires_in=60)
    assert await find_export(store, files, "bob", exported.name) is None
    assert await find_export(store, files, "alice", "A" * 32 + ".csv") is None
    assert await find_export(store, files, "alice", "../ssechat.db") is None


async def test_an_expired_file_is_not_found_and_is_swept(store: Store, tmp_path: Path) -> None:
    files = tmp_path / "files"
    old = await export_csv(store, files, "alice", ("n",), [(1,)], expires_in=60)
    async with store.session.begin() as s:
        await s.execute(update(File).where(File.name == old.name).values(expires_at=utcnow()))
    assert await find_export(store, files, "alice", old.name) is None
    assert (files / old.name).exists()
    assert await sweep(store, files) == 1
    assert not (files / old.name).exists()


async def test_writing_a_new_export_sweeps_expired_ones(store: Store, tmp_path: Path) -> None:
    files = tmp_path / "files"
    old = await export_csv(store, files, "alice", ("n",), [(1,)], expires_in=60)
    async with store.session.begin() as s:
        await s.execute(update(File).where(File.name == old.name).values(expires_at=utcnow()))
    new = await export_csv(store, files, "bob", ("n",), [(2,)], expires_in=60)
    assert not (files / old.name).exists()
    assert (files / new.name).exists()


def test_text_a_spreadsheet_would_run_as_a_formula_is_made_inert() -> None:
    data = csv_bytes(
        ["=cmd", "n"], [['=HYPERLINK("http://x")', -5], ["+1", 2.5], ["@SUM(A1)", 0], ["ok", 1]]
    )
    lines = data.decode().split("\r\n")
    assert lines[0] == "'=cmd,n"
    assert lines[1] == '"\'=HYPERLINK(""http://x"")",-5'
    assert lines[2] == "'+1,2.5"
    assert lines[3] == "'@SUM(A1),0"
    assert lines[4] == "ok,1"
