"""Import jobs carry a lease: the node running one, and until when its claim holds.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runner', sa.String(length=128), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('runner')
