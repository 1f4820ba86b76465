"""merchant: an index matching the balance ledger's page (merchant_pk, id)

ListMerchantBalanceEntries pages one merchant's entries newest first by id; with only the
merchant_pk index PostgreSQL read all of the merchant's rows and sorted them
(100 000 entries: 70 ms for the first page).

Revision ID: openapi_0002
Revises: openapi_0001
"""
from alembic import op

revision = 'openapi_0002'
down_revision = 'openapi_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_merchant_balance_entries_merchant_id', 'merchant_balance_entries', ['merchant_pk', 'id'])


def downgrade() -> None:
    op.drop_index('ix_merchant_balance_entries_merchant_id', 'merchant_balance_entries')
