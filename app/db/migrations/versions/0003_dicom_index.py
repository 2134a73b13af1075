"""The DICOM index: studies, series, instances of the local store.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dicom_studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('patient_name', sa.String(length=324), nullable=False),
    sa.Column('patient_birth_date', sa.String(length=8), nullable=False),
    sa.Column('patient_sex', sa.String(length=16), nullable=False),
    sa.Column('study_date', sa.String(length=8), nullable=False),
    sa.Column('study_time', sa.String(length=16), nullable=False),
    sa.Column('accession_number', sa.String(length=16), nullable=False),
    sa.Column('study_description', sa.String(length=64), nullable=False),
    sa.Column('referring_physician_name', sa.String(length=324), nullable=False),
    sa.Column('study_id', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dicom_studies')),
    sa.UniqueConstraint('study_instance_uid', name=op.f('uq_dicom_studies_study_instance_uid'))
    )
    with op.batch_alter_table('dicom_studies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_studies_accession_number'), ['accession_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_studies_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_studies_study_date'), ['study_date'], unique=False)
    op.create_table('dicom_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('series_number', sa.Integer(), nullable=True),
    sa.Column('series_description', sa.String(length=64), nullable=False),
    sa.Column('body_part_examined', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['dicom_studies.id'], name=op.f('fk_dicom_series_study_id_dicom_studies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dicom_series')),
    sa.UniqueConstraint('series_instance_uid', name=op.f('uq_dicom_series_series_instance_uid'))
    )
    with op.batch_alter_table('dicom_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_series_modality'), ['modality'], unique=False)
        batch_op.create_index(batch_op.f('ix_dicom_series_study_id'), ['study_id'], unique=False)
    op.create_table('dicom_instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('sop_class_uid', sa.String(length=64), nullable=False),
    sa.Column('instance_number', sa.Integer(), nullable=True),
    sa.Column('transfer_syntax_uid', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('columns', sa.Integer(), nullable=True),
    sa.Column('number_of_frames', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('received_from', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['series_id'], ['dicom_series.id'], name=op.f('fk_dicom_instances_series_id_dicom_series')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dicom_instances')),
    sa.UniqueConstraint('sop_instance_uid', name=op.f('uq_dicom_instances_sop_instance_uid'))
    )
    with op.batch_alter_table('dicom_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dicom_instances_series_id'), ['series_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dicom_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_instances_series_id'))
    op.drop_table('dicom_instances')
    with op.batch_alter_table('dicom_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_series_study_id'))
        batch_op.drop_index(batch_op.f('ix_dicom_series_modality'))
    op.drop_table('dicom_series')
    with op.batch_alter_table('dicom_studies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dicom_studies_study_date'))
        batch_op.drop_index(batch_op.f('ix_dicom_studies_patient_id'))
        batch_op.drop_index(batch_op.f('ix_dicom_studies_accession_number'))
    op.drop_table('dicom_studies')
