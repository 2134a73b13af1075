"""Name search keys on studies: the patient's and the referring physician's names without
case or diacritics (app/text_search.py), indexed, filled for the studies already held.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.text_search import person_name

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

KEYS = {"patient_name_search": "patient_name",
        "referring_physician_search": "referring_physician_name"}
BATCH = 1000


def _key_type() -> sa.types.TypeEngine[str]:
    return sa.String(324).with_variant(sa.String(324, collation="C"), "postgresql")


# Plain ALTER TABLE ADD/DROP COLUMN, which SQLite (3.35+) does in place: batch mode would
# copy the table and drop the old one, which the series' foreign keys refuse once studies
# are held.
def upgrade() -> None:
    for column in KEYS:
        op.add_column('dicom_studies', sa.Column(column, _key_type(), nullable=False,
                                                 server_default=''))
    studies = sa.table('dicom_studies', sa.column('id', sa.Integer),
                       *(sa.column(c, sa.String) for c in (*KEYS, *KEYS.values())))
    fill = studies.update().where(studies.c.id == sa.bindparam('row_id')).values(
        {key: sa.bindparam(key) for key in KEYS})
    bind = op.get_bind()
    last = 0
    # In batches by id, so a large index is not held in memory at once. The keys come from
    # the function ingest and QIDO-RS use, so that what is filled here is what they match.
    while rows := bind.execute(
            sa.select(studies.c.id, *(studies.c[name] for name in KEYS.values()))
            .where(studies.c.id > last).order_by(studies.c.id).limit(BATCH)).all():
        bind.execute(fill, [{"row_id": row.id, **{
            key: person_name(getattr(row, name))[:324] for key, name in KEYS.items()}}
            for row in rows])
        last = rows[-1].id
    for column in KEYS:
        op.create_index(op.f(f'ix_dicom_studies_{column}'), 'dicom_studies', [column],
                        unique=False)


def downgrade() -> None:
    for column in KEYS:
        op.drop_index(op.f(f'ix_dicom_studies_{column}'), table_name='dicom_studies')
        op.drop_column('dicom_studies', column)
