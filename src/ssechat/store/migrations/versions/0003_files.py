"""Exported files: a query's CSV, owned by a user, downloadable until it expires.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ssechat.store.tables import UTCDateTime

revision = "0003"
down_revision = "0001"  # a branch of its own: the store upgrades to "heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(200),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("run_id", sa.String(64)),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("files")
