"""devices: OTA bundles, rollouts and each device's running version

Revision ID: devices_0004
Revises: devices_0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "devices_0004"
down_revision = "devices_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_bundles",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("mpy", sa.String(16), nullable=True),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "id", name=op.f("pk_ota_bundles")),
    )
    op.create_table(
        "ota_bundle_files",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.Column("path", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "bundle_id", "path", name=op.f("pk_ota_bundle_files")),
    )
    op.create_table(
        "ota_rollouts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("canary_fraction", sa.Float(), nullable=False),
        sa.Column("max_failure_ratio", sa.Float(), nullable=False),
        sa.Column("allow_downgrade", sa.Boolean(), nullable=False),
        sa.Column("halted_reason", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_rollouts")),
    )
    op.create_index(op.f("ix_ota_rollouts_owner_id"), "ota_rollouts", ["owner_id"])
    op.create_index(op.f("ix_ota_rollouts_created_at"), "ota_rollouts", ["created_at"])
    op.create_table(
        "ota_rollout_devices",
        sa.Column("rollout_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("canary", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", "device_id", name=op.f("pk_ota_rollout_devices")),
    )
    op.create_index(op.f("ix_ota_rollout_devices_device_id"), "ota_rollout_devices", ["device_id"])
    op.create_table(
        "device_running_versions",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_running_versions")),
    )


def downgrade() -> None:
    op.drop_table("device_running_versions")
    op.drop_index(op.f("ix_ota_rollout_devices_device_id"), table_name="ota_rollout_devices")
    op.drop_table("ota_rollout_devices")
    op.drop_index(op.f("ix_ota_rollouts_created_at"), table_name="ota_rollouts")
    op.drop_index(op.f("ix_ota_rollouts_owner_id"), table_name="ota_rollouts")
    op.drop_table("ota_rollouts")
    op.drop_table("ota_bundle_files")
    op.drop_table("ota_bundles")
