"""The sample shop database ships with the package and is what its script generates."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from ssechat.sqlguard.execute import SAMPLE_DATABASE

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_sample_db.py"


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_db", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_the_sample_database_gives_the_same_content(tmp_path: Path) -> None:
    out = tmp_path / "shop.sqlite"
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, timeout=60)
    checksum = script().content_checksum
    assert checksum(out) == checksum(SAMPLE_DATABASE)


def test_the_sample_database_is_a_small_shop_of_a_few_thousand_rows() -> None:
    with sqlite3.connect(f"file:{SAMPLE_DATABASE}?mode=ro", uri=True) as conn:
        counts = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("customers", "products", "orders", "order_items")
        }
    assert counts == {"customers": 250, "products": 40, "orders": 1500, "order_items": 3256}
