"""The answer's CSV (the run's `csv` event: url, rows, bytes) on the message, so a reopened
conversation shows the link with its size, as the stream did.

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
        batch.add_column(sa.Column("csv", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("csv")
