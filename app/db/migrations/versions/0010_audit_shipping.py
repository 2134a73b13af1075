"""How far the audit trail has been sent to each syslog collector.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_shipping",
        sa.Column("target", sa.String(300), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_shipping")
