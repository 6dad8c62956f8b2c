"""gateway: users, bearer tokens, failed logins

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0001"
down_revision = None
branch_labels = ("gateway",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_users")),
        sa.UniqueConstraint("username", name=op.f("uq_gateway_users_username")),
    )
    op.create_table(
        "gateway_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gateway_users.id"],
            name=op.f("fk_gateway_tokens_user_id_gateway_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gateway_tokens_token_hash")),
    )
    op.create_index(op.f("ix_gateway_tokens_user_id"), "gateway_tokens", ["user_id"])
    op.create_table(
        "gateway_login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_login_failures")),
    )
    op.create_index(
        "ix_gateway_login_failures_subject",
        "gateway_login_failures",
        ["scope", "subject", "failed_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_gateway_login_failures_subject", table_name="gateway_login_failures")
    op.drop_table("gateway_login_failures")
    op.drop_index(op.f("ix_gateway_tokens_user_id"), table_name="gateway_tokens")
    op.drop_table("gateway_tokens")
    op.drop_table("gateway_users")
