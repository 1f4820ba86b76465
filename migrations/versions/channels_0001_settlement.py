"""payment channels: order settlement columns and App Store notification dedupe

Revision ID: channels_0001
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'channels_0001'
down_revision = '0001'
branch_labels = ('channels',)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vip_orders') as batch:
        batch.add_column(sa.Column('last_queried_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('closed_at', sa.DateTime(), nullable=True))
        # The settlement task scans unpaid orders by age.
        batch.create_index('ix_vip_orders_unpaid_created', ['pay_status', 'created_at'])
    op.create_table(
        'appstore_notifications',
        sa.Column('notification_uuid', sa.String(length=64), nullable=False),
        sa.Column('notification_type', sa.String(length=40), nullable=False),
        sa.Column('subtype', sa.String(length=40), nullable=True),
        sa.Column('transaction_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('notification_uuid'),
    )


def downgrade() -> None:
    op.drop_table('appstore_notifications')
    with op.batch_alter_table('vip_orders') as batch:
        batch.drop_index('ix_vip_orders_unpaid_created')
        batch.drop_column('closed_at')
        batch.drop_column('last_queried_at')
