"""gateway: login attempts counted per subject row (atomic check-and-count)

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-12-03

The failure log (one row per failed login, counted after the password check) let parallel
attempts through; one row per subject, reserved before the check, does not. The old rows
only held the last five minutes of failures, so they are dropped, not carried over.
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_gateway_login_failures_subject", table_name="gateway_login_failures")
    op.drop_table("gateway_login_failures")
    op.create_table(
        "gateway_login_attempts",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_grant", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_gateway_login_attempts")),
    )
    op.create_index(
        op.f("ix_gateway_login_attempts_window_start"),
        "gateway_login_attempts",
        ["window_start"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_gateway_login_attempts_window_start"), table_name="gateway_login_attempts"
    )
    op.drop_table("gateway_login_attempts")
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
