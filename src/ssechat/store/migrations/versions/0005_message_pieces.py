"""A streaming answer's text saved as it grows, a row per save (`message_pieces`).

Saving progress as `content = content || piece` rewrote the whole answer at every save: a
long answer cost the square of its length in writes (on PostgreSQL, as dead row versions).
A piece is written once; the answer's end writes its whole text and drops its pieces.

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"  # it adds to `messages` only: a branch of its own, as 0003 and 0004
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_pieces",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "message_id",
            sa.String(64),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_message_pieces_message", "message_pieces", ["message_id", "pk"])
    # An answer saved the old way keeps its text in `content`: pieces are read after it.


def downgrade() -> None:
    op.drop_index("ix_message_pieces_message", table_name="message_pieces")
    op.drop_table("message_pieces")
