"""recharge: catalog, wallets + ledger entries, recharge orders, rate counters, captchas

Revision ID: recharge_0001
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'recharge_0001'
down_revision = '0001'
branch_labels = ('recharge',)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('recharge_catalog',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('wallets',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('store_id', sa.BigInteger(), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'store_id', name='uq_wallets_user_store')
    )
    op.create_table('wallet_entries',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('wallet_id', BigId, nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('wallet_id', 'reason', 'reference', name='uq_wallet_entries_cause'),
    sa.UniqueConstraint('wallet_id', 'request_id', name='uq_wallet_entries_request')
    )
    op.create_index('ix_wallet_entries_wallet_id', 'wallet_entries', ['wallet_id', 'id'], unique=False)
    op.create_table('recharge_orders',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('order_number', sa.String(length=40), nullable=True),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('store_id', sa.BigInteger(), nullable=False),
    sa.Column('family', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('gift_amount', sa.BigInteger(), nullable=False),
    sa.Column('vip_level', sa.String(length=10), nullable=True),
    sa.Column('vip_months', sa.Integer(), nullable=False),
    sa.Column('pay_method', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=False),
    sa.Column('provider_txn_id', sa.String(length=128), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_number')
    )
    op.create_index('ix_recharge_orders_user_created', 'recharge_orders', ['user_id', 'store_id', 'created_at'],
                    unique=False)
    op.create_table('rate_counters',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start')
    )
    op.create_table('recharge_captchas',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recharge_captchas_user', 'recharge_captchas', ['user_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recharge_captchas_user', table_name='recharge_captchas')
    op.drop_table('recharge_captchas')
    op.drop_table('rate_counters')
    op.drop_index('ix_recharge_orders_user_created', table_name='recharge_orders')
    op.drop_table('recharge_orders')
    op.drop_index('ix_wallet_entries_wallet_id', table_name='wallet_entries')
    op.drop_table('wallet_entries')
    op.drop_table('wallets')
    op.drop_table('recharge_catalog')
