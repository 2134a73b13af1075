"""The consultation minutes (biên bản hội chẩn): versions and their sign-offs. Signed
versions and every sign-off are guarded by triggers, as the audit trail is. Cases get the
patient's national ID (CCCD) for the FHIR export.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

GUARD_SQLITE = [
    "CREATE TRIGGER minutes_signed_no_update BEFORE UPDATE ON minutes "
    "WHEN OLD.status = 'signed' "
    "BEGIN SELECT RAISE(ABORT, 'signed minutes never change'); END",
    "CREATE TRIGGER minutes_signed_no_delete BEFORE DELETE ON minutes "
    "WHEN OLD.status = 'signed' "
    "BEGIN SELECT RAISE(ABORT, 'signed minutes never change'); END",
    *(f"CREATE TRIGGER minutes_signoffs_no_{op_} BEFORE {op_.upper()} ON minutes_signoffs "
      f"BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END"
      for op_ in ("update", "delete")),
]
GUARD_POSTGRES = [
    "CREATE FUNCTION minutes_signed_unchanged() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN IF OLD.status = 'signed' THEN "
    "RAISE EXCEPTION 'signed minutes never change'; END IF; "
    "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER minutes_signed_no_change BEFORE UPDATE OR DELETE ON minutes "
    "FOR EACH ROW EXECUTE FUNCTION minutes_signed_unchanged()",
    "CREATE FUNCTION minutes_signoffs_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'sign-offs are append-only'; END $$",
    "CREATE TRIGGER minutes_signoffs_no_change BEFORE UPDATE OR DELETE ON minutes_signoffs "
    "FOR EACH ROW EXECUTE FUNCTION minutes_signoffs_append_only()",
]


def upgrade() -> None:
    # Plain ADD COLUMN, as in 0007: batch mode would copy the table under its foreign keys.
    op.add_column('cases', sa.Column('national_id', sa.String(length=12), nullable=False,
                                     server_default=''))
    op.create_table(
        'minutes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('consultation_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('draft', 'signed', name='minutes_status', native_enum=False, length=16), nullable=False),
        sa.Column('content', sa.JSON(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('secretary_id', sa.Integer(), nullable=True),
        sa.Column('attendees', sa.JSON(), nullable=True),
        sa.Column('amendment_reason', sa.Text(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('signed_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_minutes_consultation_id_consultations')),
        sa.ForeignKeyConstraint(['secretary_id'], ['users.id'], name=op.f('fk_minutes_secretary_id_users')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_minutes_created_by_id_users')),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_minutes_updated_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_minutes')),
        sa.UniqueConstraint('consultation_id', 'version', name='uq_minutes_version'),
    )
    op.create_index(op.f('ix_minutes_consultation_id'), 'minutes', ['consultation_id'], unique=False)
    op.create_table(
        'minutes_signoffs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('minutes_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('signed_at', UTCDateTime(), nullable=False),
        sa.Column('content_sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['minutes_id'], ['minutes.id'], name=op.f('fk_minutes_signoffs_minutes_id_minutes')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_minutes_signoffs_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_minutes_signoffs')),
        sa.UniqueConstraint('minutes_id', 'role', name='uq_minutes_signoffs_role'),
    )
    op.create_index(op.f('ix_minutes_signoffs_minutes_id'), 'minutes_signoffs', ['minutes_id'], unique=False)
    guard = GUARD_POSTGRES if op.get_bind().dialect.name == "postgresql" else GUARD_SQLITE
    for statement in guard:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER minutes_signoffs_no_change ON minutes_signoffs")
        op.execute("DROP FUNCTION minutes_signoffs_append_only()")
        op.execute("DROP TRIGGER minutes_signed_no_change ON minutes")
        op.execute("DROP FUNCTION minutes_signed_unchanged()")
    op.drop_index(op.f('ix_minutes_signoffs_minutes_id'), table_name='minutes_signoffs')
    op.drop_table('minutes_signoffs')
    op.drop_index(op.f('ix_minutes_consultation_id'), table_name='minutes')
    op.drop_table('minutes')
    op.drop_column('cases', 'national_id')
