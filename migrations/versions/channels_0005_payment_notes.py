"""payment channels: the provider statements each order received (payment_notes) and the sandbox provider's books

Revision ID: channels_0005
Revises: channels_0004
"""
from alembic import op
import sqlalchemy as sa


revision = 'channels_0005'
down_revision = 'channels_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payment_notes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('book', sa.String(length=24), nullable=False),
        sa.Column('order_id', sa.BigInteger(), nullable=False),
        sa.Column('source', sa.String(length=12), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('trade_no', sa.String(length=64), nullable=False),
        sa.Column('provider_txn_id', sa.String(length=128), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('paid', sa.Boolean(), nullable=False),
        sa.Column('closed', sa.Boolean(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_payment_notes_book_order', 'payment_notes', ['book', 'order_id'])
    op.create_table(
        'sandbox_trades',
        sa.Column('trade_no', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('txn_id', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('trade_no'),
    )


def downgrade() -> None:
    op.drop_table('sandbox_trades')
    op.drop_index('ix_payment_notes_book_order', table_name='payment_notes')
    op.drop_table('payment_notes')
