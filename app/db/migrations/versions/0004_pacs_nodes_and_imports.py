"""Remote PACS nodes and the imports of studies from them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pacs_nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('dimse', 'dicomweb', name='pacs_node_kind', native_enum=False, length=16), nullable=False),
    sa.Column('ae_title', sa.String(length=16), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('retrieve', sa.Enum('c-move', 'c-get', name='pacs_retrieve', native_enum=False, length=16), nullable=False),
    sa.Column('dicomweb_url', sa.String(length=500), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], name=op.f('fk_pacs_nodes_hospital_id_hospitals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pacs_nodes')),
    sa.UniqueConstraint('name', name=op.f('uq_pacs_nodes_name'))
    )
    with op.batch_alter_table('pacs_nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pacs_nodes_hospital_id'), ['hospital_id'], unique=False)

    op.create_table('import_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', name='import_status', native_enum=False, length=16), nullable=False),
    sa.Column('instances_total', sa.Integer(), nullable=True),
    sa.Column('instances_done', sa.Integer(), nullable=False),
    sa.Column('instances_failed', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_import_jobs_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['pacs_nodes.id'], name=op.f('fk_import_jobs_node_id_pacs_nodes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_import_jobs_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_jobs_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_import_jobs_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_import_jobs_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_import_jobs_node_id'))
        batch_op.drop_index(batch_op.f('ix_import_jobs_case_id'))

    op.drop_table('import_jobs')
    with op.batch_alter_table('pacs_nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pacs_nodes_hospital_id'))

    op.drop_table('pacs_nodes')
