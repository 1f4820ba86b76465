"""membership: an index matching ListVipOrders' ORDER BY (user_id, id)

The list pages a user's orders newest first by id; the (user_id, created_at) index
made every page read all of the user's rows and sort them.

Revision ID: membership_0001
Revises: 0001
"""
from alembic import op

revision = 'membership_0001'
down_revision = '0001'
branch_labels = ('membership',)
depends_on = None


def upgrade() -> None:
    op.create_index('ix_vip_orders_user_id', 'vip_orders', ['user_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_vip_orders_user_id', 'vip_orders')
