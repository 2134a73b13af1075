"""Users' chosen language; search keys of user and hospital names (app/text_search.py),
indexed, filled for the rows already held.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import search_key
from app.text_search import fold

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ("users", "hospitals")


# Plain ALTER TABLE ADD/DROP COLUMN, as in 0007: batch mode would copy the tables, which the
# foreign keys pointing at them refuse once rows are held.
def upgrade() -> None:
    op.add_column('users', sa.Column('language', sa.String(length=8), nullable=True))
    bind = op.get_bind()
    for name in TABLES:
        op.add_column(name, sa.Column('name_search', search_key(200), nullable=False,
                                      server_default=''))
        table = sa.table(name, sa.column('id', sa.Integer), sa.column('name', sa.String),
                         sa.column('name_search', sa.String))
        # Users and hospitals number thousands at most: one pass, with the function the
        # models use on write, so that what is filled here is what a search matches.
        rows = bind.execute(sa.select(table.c.id, table.c.name)).all()
        if rows:
            bind.execute(table.update().where(table.c.id == sa.bindparam('row_id'))
                         .values(name_search=sa.bindparam('key')),
                         [{"row_id": row.id, "key": fold(row.name)[:200]} for row in rows])
        op.create_index(op.f(f'ix_{name}_name_search'), name, ['name_search'], unique=False)


def downgrade() -> None:
    for name in TABLES:
        op.drop_index(op.f(f'ix_{name}_name_search'), table_name=name)
        op.drop_column(name, 'name_search')
    op.drop_column('users', 'language')
