"""The patient's consents on a case: to the tele-consultation and to its recording, who gave
them, when and how. Append-only, guarded by triggers as the audit trail is: a withdrawal is a
new record, the consent it ends stays as it was.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

GUARD_SQLITE = [
    f"CREATE TRIGGER consents_no_{op_} BEFORE {op_.upper()} ON consents "
    f"BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END"
    for op_ in ("update", "delete")
]
GUARD_POSTGRES = [
    "CREATE FUNCTION consents_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'consent records are append-only'; END $$",
    "CREATE TRIGGER consents_no_change BEFORE UPDATE OR DELETE ON consents "
    "FOR EACH ROW EXECUTE FUNCTION consents_append_only()",
]


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        'consents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('scope', _enum('consent_scope', 'teleconsultation', 'recording'),
                  nullable=False),
        sa.Column('decision', _enum('consent_decision', 'granted', 'refused', 'withdrawn'),
                  nullable=False),
        sa.Column('given_by', _enum('consent_giver', 'patient', 'representative'),
                  nullable=False),
        sa.Column('giver_name', sa.String(length=200), nullable=False),
        sa.Column('relation', sa.String(length=100), nullable=False),
        sa.Column('method', _enum('consent_method', 'signed_form', 'verbal'), nullable=False),
        sa.Column('given_at', UTCDateTime(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=False),
        sa.Column('recorded_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_consents_case_id_cases')),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_consents_recorded_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consents')),
    )
    op.create_index(op.f('ix_consents_case_id'), 'consents', ['case_id'], unique=False)
    guard = GUARD_POSTGRES if op.get_bind().dialect.name == "postgresql" else GUARD_SQLITE
    for statement in guard:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER consents_no_change ON consents")
        op.execute("DROP FUNCTION consents_append_only()")
    op.drop_index(op.f('ix_consents_case_id'), table_name='consents')
    op.drop_table('consents')
