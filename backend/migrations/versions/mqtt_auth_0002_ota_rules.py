"""mqtt_auth: accounts made before OTA updates may read their offer and chunks

Revision ID: mqtt_auth_0002
Revises: mqtt_auth_0001
Create Date: 2026-12-10

A device's rules are written when its account is made (mqtt_auth/acl.py), so accounts
older than a new rule lack it: this adds the subscribe rules of docs/fleet.md and
docs/ota.md (config, ota, ota/chunk) to every account that has not got them.
"""

import sqlalchemy as sa
from alembic import op

revision = "mqtt_auth_0002"
down_revision = "mqtt_auth_0001"
branch_labels = None
depends_on = None

KINDS = ("config", "ota", "ota/chunk")  # as mqtt_auth/acl.py's device_rules, frozen here

accounts = sa.table("mqtt_accounts", sa.column("client_id", sa.String))
rules = sa.table(
    "mqtt_acl_rules",
    sa.column("client_id", sa.String),
    sa.column("access", sa.String),
    sa.column("topic", sa.String),
)


def upgrade() -> None:
    connection = op.get_bind()
    have = set(connection.execute(sa.select(rules.c.client_id, rules.c.topic)).all())
    missing = [
        {"client_id": client_id, "access": "subscribe", "topic": f"devices/{client_id}/{kind}"}
        for (client_id,) in connection.execute(sa.select(accounts.c.client_id)).all()
        for kind in KINDS
        if (client_id, f"devices/{client_id}/{kind}") not in have
    ]
    if missing:
        op.bulk_insert(rules, missing)


def downgrade() -> None:
    for kind in ("ota", "ota/chunk"):  # config's rule predates this revision
        op.execute(
            rules.delete().where(
                rules.c.access == "subscribe", rules.c.topic.like(f"devices/%/{kind}")
            )
        )
