"""learned delivery rates, shared by every replica

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 05:30:00

``delivery_rates``: per (workspace, bucket) the rate the adaptive pacing learned (kept across
restarts, shown by ``syncup outbox rates``) and, on PostgreSQL, the bucket's shared state.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_rates",
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("bucket", sa.String(length=96), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("burst", sa.Integer(), nullable=False),
        sa.Column("learned", sa.Boolean(), nullable=False),
        sa.Column("measured", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=True),
        sa.Column("window_sends", sa.Integer(), nullable=False),
        sa.Column("window_after_429", sa.Boolean(), nullable=False),
        sa.Column("round_sends", sa.Integer(), nullable=False),
        sa.Column("hold", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_delivery_rates_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "bucket", name="pk_delivery_rates"),
    )


def downgrade() -> None:
    op.drop_table("delivery_rates")
