"""Alembic environment: ssechat runs migrations itself at start-up, on the connection that
`ssechat.store.migrate` passes in `config.attributes["connection"]`.

New revision (from the repository root, against a scratch database):
    alembic -c src/ssechat/store/alembic.ini revision --autogenerate -m "what changed"
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ssechat.store.tables import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # the alembic command line, for writing new revisions
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///scratch.db")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
)
with context.begin_transaction():
    context.run_migrations()
