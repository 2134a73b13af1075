"""Least privilege: an admin reads a consultation's images and minutes (or, for a study no
case holds, the whole store's images) only under a break-the-glass grant (a stated reason,
for a limited time, audited for review); observers
see the patient de-identified unless the host shows them who it is.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'break_glass_grants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('consultation_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('granted_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_break_glass_grants_user_id_users')),
        sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_break_glass_grants_consultation_id_consultations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_grants')),
    )
    op.create_index('ix_break_glass_grants_user_consultation', 'break_glass_grants',
                    ['user_id', 'consultation_id', 'expires_at'], unique=False)
    # Plain ADD COLUMN, as in 0007: batch mode would copy the table under its foreign keys.
    op.add_column('consultations', sa.Column('observers_identified', sa.Boolean(),
                                             nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('consultations', 'observers_identified')
    op.drop_index('ix_break_glass_grants_user_consultation', table_name='break_glass_grants')
    op.drop_table('break_glass_grants')
