"""payment channels: App Store transactions refunded or revoked (before or after redemption)

Revision ID: channels_0002
Revises: channels_0001
"""
from alembic import op
import sqlalchemy as sa


revision = 'channels_0002'
down_revision = 'channels_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'iap_transactions',
        sa.Column('transaction_id', sa.String(length=64), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revocation', sa.String(length=20), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('transaction_id'),
    )


def downgrade() -> None:
    op.drop_table('iap_transactions')
