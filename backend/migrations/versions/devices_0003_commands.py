"""devices: commands sent to devices and their outcome

Revision ID: devices_0003
Revises: devices_0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "devices_0003"
down_revision = "devices_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_commands")),
    )
    op.create_index(op.f("ix_device_commands_device_id"), "device_commands", ["device_id"])
    op.create_index(op.f("ix_device_commands_created_at"), "device_commands", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_device_commands_created_at"), table_name="device_commands")
    op.drop_index(op.f("ix_device_commands_device_id"), table_name="device_commands")
    op.drop_table("device_commands")
