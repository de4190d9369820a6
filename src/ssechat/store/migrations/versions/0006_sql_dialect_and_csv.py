"""What a SQL answer's events carried that the message did not keep: the `sql` event's
dialect and the whole `csv` event (url, rows, bytes), so a reopened conversation shows them
as the stream did.

Revision ID: 0006
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"  # it changes only `messages`: a branch of its own, as 0003 and 0004
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("sql_dialect", sa.String(50)))
        batch.add_column(sa.Column("csv", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("csv")
        batch.drop_column("sql_dialect")
