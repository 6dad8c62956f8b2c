"""devices: desired configuration versions and the device's report

Revision ID: devices_0002
Revises: devices_0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "devices_0002"
down_revision = "devices_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_config_versions",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "version", name=op.f("pk_device_config_versions")),
    )
    op.create_table(
        "device_config_reports",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_config_reports")),
    )


def downgrade() -> None:
    op.drop_table("device_config_reports")
    op.drop_table("device_config_versions")
