"""Users, API keys, conversations, messages.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ssechat.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column(
            "user_id",
            sa.String(200),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column(
            "user_id",
            sa.String(200),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "id"),
    )
    op.create_index("ix_conversations_user_updated", "conversations", ["user_id", "updated_at"])
    op.create_table(
        "messages",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "conversation_pk",
            sa.Integer(),
            sa.ForeignKey("conversations.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("pipeline", sa.String(100)),
        sa.Column("model", sa.String(200)),
        sa.Column("run_id", sa.String(64), index=True),
        sa.Column("client_message_id", sa.String(200)),
        sa.Column("usage", sa.JSON()),
        sa.Column("sources", sa.JSON()),
        sa.Column("sql", sa.Text()),
        sa.Column("csv_url", sa.String(500)),
        sa.Column("error", sa.JSON()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("conversation_pk", "client_message_id"),
    )
    op.create_index("ix_messages_conversation_pk", "messages", ["conversation_pk", "pk"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("conversations")
    op.drop_table("api_keys")
    op.drop_table("users")
