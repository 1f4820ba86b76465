"""membership: an index matching the grant chain's page (user_id, id)

The console's ListMembershipGrants pages a user's membership_grants newest first by id.

Revision ID: membership_0002
Revises: membership_0001
"""
from alembic import op

revision = 'membership_0002'
down_revision = 'membership_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_membership_grants_chain', 'membership_grants', ['user_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_membership_grants_chain', 'membership_grants')
