"""users.session_token: part of every session cookie, replaced to sign a user out everywhere.

Revision ID: 0007_user_session_token
Revises: 0007_audit_append_only
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_user_session_token"
down_revision = "0007_audit_append_only"
branch_labels = None
depends_on = None


def upgrade():
    # Every existing user gets a token of their own, so cookies issued before this migration stop working.
    op.add_column(
        "users",
        sa.Column(
            "session_token",
            sa.String(64),
            server_default=sa.text("replace((gen_random_uuid())::text, '-'::text, ''::text)"),
            nullable=False,
        ),
    )


def downgrade():
    op.drop_column("users", "session_token")
