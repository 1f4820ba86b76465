"""recharge orders: settlement re-query claim

Revision ID: recharge_0002
Revises: recharge_0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'recharge_0002'
down_revision = 'recharge_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recharge_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_queried_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recharge_orders', schema=None) as batch_op:
        batch_op.drop_column('last_queried_at')
