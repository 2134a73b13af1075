"""Frame indexes: where each frame lies, in the stored file or in a copy encoded once into
another transfer syntax (HTJ2K, JPEG-LS, JPEG 2000) for WADO-RS.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('frame_indexes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('transfer_syntax_uid', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('frames', sa.JSON(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['dicom_instances.id'],
                            name=op.f('fk_frame_indexes_instance_id_dicom_instances'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_frame_indexes')),
    sa.UniqueConstraint('instance_id', 'transfer_syntax_uid',
                        name=op.f('uq_frame_indexes_instance_id'))
    )
    with op.batch_alter_table('frame_indexes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_frame_indexes_instance_id'), ['instance_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('frame_indexes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_frame_indexes_instance_id'))
    op.drop_table('frame_indexes')
