"""payment channels: daily reconciliation runs (one per date and channel, also the lease) and their items

Revision ID: channels_0004
Revises: channels_0003
"""
from alembic import op
import sqlalchemy as sa


revision = 'channels_0004'
down_revision = 'channels_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reconciliation_runs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('business_date', sa.String(length=10), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('succeeded_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('business_date', 'channel', name='uq_reconciliation_runs_date_channel'),
    )
    op.create_table(
        'reconciliation_items',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('category', sa.String(length=24), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('order_number', sa.String(length=64), nullable=False),
        sa.Column('refund_no', sa.String(length=64), nullable=False),
        sa.Column('book', sa.String(length=20), nullable=False),
        sa.Column('provider_txn_id', sa.String(length=64), nullable=False),
        sa.Column('provider_amount_fen', sa.BigInteger(), nullable=True),
        sa.Column('local_amount_fen', sa.BigInteger(), nullable=True),
        sa.Column('fee_fen', sa.BigInteger(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reconciliation_items_run', 'reconciliation_items', ['run_id', 'category'])


def downgrade() -> None:
    op.drop_index('ix_reconciliation_items_run', table_name='reconciliation_items')
    op.drop_table('reconciliation_items')
    op.drop_table('reconciliation_runs')
