"""recharge: user profiles shown in 003's `personal`

Revision ID: recharge_0003
Revises: recharge_0002
"""
import sqlalchemy as sa
from alembic import op

revision = 'recharge_0003'
down_revision = 'recharge_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_profiles',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('store_id', sa.BigInteger(), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=False),
    sa.Column('nick_name', sa.String(length=64), nullable=False),
    sa.Column('avatar_id', sa.Integer(), nullable=False),
    sa.Column('gender', sa.String(length=8), nullable=False),
    sa.Column('address_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('grade_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('last_login_time', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'store_id')
    )


def downgrade() -> None:
    op.drop_table('user_profiles')
