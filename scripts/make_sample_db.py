#!/usr/bin/env python3
"""Generate the sample shop database the `sql` pipeline queries by default.

    python scripts/make_sample_db.py [OUTPUT]     # default: src/ssechat/data/shop.sqlite

Deterministic: the same script gives the same rows every time (a seeded `random.Random`, no
clock, no environment), so `content_checksum` of a regenerated file equals the shipped one's.
The file's bytes may still differ between SQLite library versions (its header records the
version that wrote it), which is why the check compares content, not bytes.

A small shop: 250 customers, 40 products, 1,500 orders and their ~3,700 order items, dated
2024-01-01 to 2025-06-30.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path

SEED = 20240601
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "src" / "ssechat" / "data" / "shop.sqlite"

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    signed_up DATE NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    price REAL NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ordered_at DATE NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL
);
CREATE INDEX ix_orders_customer_id ON orders(customer_id);
CREATE INDEX ix_order_items_order_id ON order_items(order_id);
CREATE INDEX ix_order_items_product_id ON order_items(product_id);
"""

FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances",
    "Edsger", "Radia", "Tim", "Hedy", "Claude", "Katherine", "John", "Sophie", "Yukihiro",
    "Guido", "Anita", "Donald", "Lynn", "Niklaus", "Carol", "Bjarne", "Shafi", "Leslie",
    "Jean", "Mary", "Whitfield",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Lamarr", "Shannon", "Johnson", "McCarthy",
    "Wilson", "Matsumoto", "Rossum", "Borg", "Knuth", "Conway", "Wirth", "Shaw", "Stroustrup",
    "Goldwasser", "Lamport", "Sammet", "Keller", "Diffie",
)  # fmt: skip
CITIES = (
    ("Paris", "France"),
    ("Lyon", "France"),
    ("Berlin", "Germany"),
    ("Munich", "Germany"),
    ("Madrid", "Spain"),
    ("Barcelona", "Spain"),
    ("Rome", "Italy"),
    ("Milan", "Italy"),
    ("London", "United Kingdom"),
    ("Manchester", "United Kingdom"),
    ("Amsterdam", "Netherlands"),
    ("Lisbon", "Portugal"),
    ("Vienna", "Austria"),
    ("Zurich", "Switzerland"),
    ("Dublin", "Ireland"),
    ("Warsaw", "Poland"),
)
PRODUCTS = {
    "Books": ("SQL Basics", "Data Modeling", "The Query Planner", "Indexes in Depth",
              "Streaming Systems", "Python Recipes", "Clean Schemas"),
    "Electronics": ("USB-C Cable", "Wireless Mouse", "Mechanical Keyboard", "27-inch Monitor",
                    "Noise-Cancelling Headphones", "Webcam", "Laptop Stand"),
    "Kitchen": ("Espresso Cups", "Chef Knife", "Cutting Board", "French Press", "Tea Kettle",
                "Spice Rack", "Cast Iron Pan"),
    "Garden": ("Watering Can", "Pruning Shears", "Seed Starter Kit", "Garden Gloves",
               "Bird Feeder", "Compost Bin"),
    "Toys": ("Building Blocks", "Puzzle 1000 Pieces", "Kite", "Board Game", "Yo-yo",
             "Model Train"),
    "Clothing": ("Rain Jacket", "Wool Socks", "Sun Hat", "Running Shoes", "Scarf",
                 "Denim Jacket", "T-shirt"),
}  # fmt: skip
PRICE_RANGES = {
    "Books": (12, 60),
    "Electronics": (8, 400),
    "Kitchen": (9, 90),
    "Garden": (6, 70),
    "Toys": (4, 120),
    "Clothing": (10, 150),
}
STATUSES = (("delivered", 70), ("shipped", 12), ("pending", 8), ("cancelled", 10))
START = date(2024, 1, 1)
DAYS = (date(2025, 6, 30) - START).days + 1


def build(path: Path) -> None:
    """Write the database to `path`, replacing any file there."""
    rng = random.Random(SEED)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(SCHEMA)
        customers = []
        for cid in range(1, 251):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            city, country = rng.choice(CITIES)
            email = f"{first}.{last}{cid}@example.com".lower()
            signed_up = START + timedelta(days=rng.randrange(DAYS - 60))
            customers.append((cid, f"{first} {last}", email, city, country, signed_up))
        products = []
        for category, names in PRODUCTS.items():
            low, high = PRICE_RANGES[category]
            for name in names:
                cents = rng.randrange(low * 100, high * 100)
                products.append((len(products) + 1, name, category, cents // 5 * 5 / 100))
        orders, items = [], []
        statuses = [s for s, _ in STATUSES]
        weights = [w for _, w in STATUSES]
        for oid in range(1, 1501):
            cid, _, _, _, _, signed_up = rng.choice(customers)
            left = (START + timedelta(days=DAYS - 1) - signed_up).days
            ordered_at = signed_up + timedelta(days=rng.randrange(left + 1))
            orders.append((oid, cid, ordered_at, rng.choices(statuses, weights)[0]))
            for product in rng.sample(products, rng.choice((1, 1, 2, 2, 3, 4))):
                items.append(
                    (len(items) + 1, oid, product[0], rng.choice((1, 1, 1, 2, 2, 3)), product[3])
                )
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            [(*c[:5], c[5].isoformat()) for c in customers],
        )
        conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", products)
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [(o[0], o[1], o[2].isoformat(), o[3]) for o in orders],
        )
        conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()
    tmp.replace(path)


def content_checksum(path: Path) -> str:
    """sha256 of the database's SQL dump: equal for equal schema and rows, whatever wrote it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        for line in conn.iterdump():
            digest.update(line.encode() + b"\n")
        return digest.hexdigest()
    finally:
        conn.close()


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    build(output)
    print(f"{output}: {output.stat().st_size} bytes, content sha256 {content_checksum(output)}")


if __name__ == "__main__":
    main()
