"""dapr_configuration: the table of the agents' Dapr configuration store (configuration.postgresql)

The column names and the NOTIFY trigger are the ones the component requires (docs/dapr.md):
KEY, VALUE, VERSION, METADATA, and a row trigger that sends ``{"table", "action", "data"}``
on channel ``edgecloud_config`` (the ``pgNotifyChannel`` of the agent's subscription). On
SQLite only the table (no Dapr there).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "dapr_configuration"
CHANNEL = "edgecloud_config"

NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION edgecloud_dapr_config_notify() RETURNS trigger AS $$
DECLARE
    row_data json;
BEGIN
    IF (TG_OP = 'DELETE') THEN
        row_data = row_to_json(OLD);
    ELSE
        row_data = row_to_json(NEW);
    END IF;
    PERFORM pg_notify('{CHANNEL}', json_build_object(
        'table', TG_TABLE_NAME, 'action', TG_OP, 'data', row_data)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(
            f"CREATE TRIGGER {TABLE}_notify AFTER INSERT OR UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION edgecloud_dapr_config_notify()"
        )


def downgrade() -> None:
    op.drop_table(TABLE)  # drops its trigger
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS edgecloud_dapr_config_notify()")
