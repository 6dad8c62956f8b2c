"""mqtt_auth: MQTT accounts and their topic rules

Revision ID: mqtt_auth_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "mqtt_auth_0001"
down_revision = None
branch_labels = ("mqtt_auth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mqtt_accounts",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_mqtt_accounts")),
    )
    op.create_index(op.f("ix_mqtt_accounts_owner_id"), "mqtt_accounts", ["owner_id"])
    op.create_table(
        "mqtt_acl_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["mqtt_accounts.client_id"],
            name=op.f("fk_mqtt_acl_rules_client_id_mqtt_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mqtt_acl_rules")),
    )
    op.create_index(op.f("ix_mqtt_acl_rules_client_id"), "mqtt_acl_rules", ["client_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mqtt_acl_rules_client_id"), table_name="mqtt_acl_rules")
    op.drop_table("mqtt_acl_rules")
    op.drop_index(op.f("ix_mqtt_accounts_owner_id"), table_name="mqtt_accounts")
    op.drop_table("mqtt_accounts")
