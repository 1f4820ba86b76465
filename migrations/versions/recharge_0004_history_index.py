"""recharge: an index matching the 002 history's ORDER BY (user_id, store_id, id)

Revision ID: recharge_0004
Revises: recharge_0003
"""
from alembic import op

revision = 'recharge_0004'
down_revision = 'recharge_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_recharge_orders_user_store_id', 'recharge_orders', ['user_id', 'store_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_recharge_orders_user_store_id', 'recharge_orders')
