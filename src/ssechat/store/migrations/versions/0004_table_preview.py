"""The answer's table preview (the run's `table` event) on the message.

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"  # it changes only `messages`: a branch of its own, as 0003
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("table_preview", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("table_preview")
