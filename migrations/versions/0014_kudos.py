"""kudos: settings, kudos and their receivers, board opt-outs

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:40:00

``kudos_settings`` (a workspace's quota, weekly cap per receiver, values, channel),
``kudos`` (one per kudos given; indexed by giver and time for the quota), ``kudos_receivers``
(one row per person thanked) and ``kudos_optouts`` (members who appear on no board).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _member_key(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["members.id"], name=f"fk_{table}_{column}_members", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "kudos_settings",
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("daily_quota", sa.Integer(), nullable=False),
        sa.Column("weekly_per_receiver", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("post_where_given", sa.Boolean(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_kudos_settings_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_kudos_settings"),
    )
    op.create_table(
        "kudos",
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("giver_id", BIG, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("given_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_kudos_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        _member_key("kudos", "giver_id"),
        sa.PrimaryKeyConstraint("id", name="pk_kudos"),
    )
    op.create_index("ix_kudos_giver_given", "kudos", ["giver_id", "given_at"])
    op.create_index("ix_kudos_given_at", "kudos", ["given_at"])
    op.create_index("ix_kudos_workspace_id", "kudos", ["workspace_id"])
    op.create_table(
        "kudos_receivers",
        sa.Column("kudos_id", BIG, nullable=False),
        sa.Column("receiver_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["kudos_id"], ["kudos.id"], name="fk_kudos_receivers_kudos_id_kudos", ondelete="CASCADE"
        ),
        _member_key("kudos_receivers", "receiver_id"),
        sa.PrimaryKeyConstraint("kudos_id", "receiver_id", name="pk_kudos_receivers"),
    )
    op.create_index("ix_kudos_receivers_receiver_id", "kudos_receivers", ["receiver_id"])
    op.create_table(
        "kudos_optouts",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("opted_out_at", WHEN, nullable=False),
        _member_key("kudos_optouts", "member_id"),
        sa.PrimaryKeyConstraint("member_id", name="pk_kudos_optouts"),
    )


def downgrade() -> None:
    op.drop_table("kudos_optouts")
    op.drop_index("ix_kudos_receivers_receiver_id", table_name="kudos_receivers")
    op.drop_table("kudos_receivers")
    op.drop_index("ix_kudos_workspace_id", table_name="kudos")
    op.drop_index("ix_kudos_given_at", table_name="kudos")
    op.drop_index("ix_kudos_giver_given", table_name="kudos")
    op.drop_table("kudos")
    op.drop_table("kudos_settings")
