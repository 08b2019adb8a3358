"""inbound webhooks

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:00:00

``hooks`` (one URL per sender, its secret encrypted), ``hook_rules`` (event and filters to a
channel and a template), ``hook_deliveries`` (the last deliveries and what came of them) and
``hook_seen`` (delivery ids already acted on, until they expire).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _hook_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["hook_id"], ["hooks.id"], name=f"fk_{table}_hook_id_hooks", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "hooks",
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_by_id", BIG, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["members.id"],
            name="fk_hooks_created_by_id_members",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_hooks_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_hooks"),
        sa.UniqueConstraint("workspace_id", "key", name="uq_hooks_workspace_id_key"),
        sa.UniqueConstraint("token", name="uq_hooks_token"),
    )
    op.create_table(
        "hook_rules",
        sa.Column("id", BIG, nullable=False),
        sa.Column("hook_id", BIG, nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("milestone", sa.String(length=128), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        _hook_fk("hook_rules"),
        sa.PrimaryKeyConstraint("id", name="pk_hook_rules"),
    )
    op.create_index("ix_hook_rules_hook_id", "hook_rules", ["hook_id"])
    op.create_table(
        "hook_deliveries",
        sa.Column("id", BIG, nullable=False),
        sa.Column("hook_id", BIG, nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _hook_fk("hook_deliveries"),
        sa.PrimaryKeyConstraint("id", name="pk_hook_deliveries"),
    )
    op.create_index("ix_hook_deliveries_hook_id_id", "hook_deliveries", ["hook_id", "id"])
    op.create_table(
        "hook_seen",
        sa.Column("hook_id", BIG, nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        _hook_fk("hook_seen"),
        sa.PrimaryKeyConstraint("hook_id", "delivery_id", name="pk_hook_seen"),
    )
    op.create_index("ix_hook_seen_expires_at", "hook_seen", ["expires_at"])


def downgrade() -> None:
    op.drop_table("hook_seen")
    op.drop_table("hook_deliveries")
    op.drop_table("hook_rules")
    op.drop_table("hooks")
