"""payment channels: refunds (operator and provider-console), keyed by our refund number

Revision ID: channels_0003
Revises: channels_0002
"""
from alembic import op
import sqlalchemy as sa


revision = 'channels_0003'
down_revision = 'channels_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'refunds',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('refund_no', sa.String(length=64), nullable=False),
        sa.Column('book', sa.String(length=20), nullable=False),
        sa.Column('order_id', sa.BigInteger(), nullable=False),
        sa.Column('order_number', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('origin', sa.String(length=10), nullable=False),
        sa.Column('provider_refund_id', sa.String(length=64), nullable=True),
        sa.Column('take_back', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('last_queried_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('refund_no'),
    )
    op.create_index('ix_refunds_order', 'refunds', ['book', 'order_id'])
    op.create_index('ix_refunds_open', 'refunds', ['state', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_refunds_open', table_name='refunds')
    op.drop_index('ix_refunds_order', table_name='refunds')
    op.drop_table('refunds')
