"""automatic celebrations: settings, members' dates, celebrations posted

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:20:00

``celebration_settings`` (a workspace's switches, streak length and channel),
``celebration_profiles`` (a member's birthday as month and day, never a year; their start
date; their opt-out) and ``celebrations`` (one row per celebration posted, unique by key).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _workspace_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=f"fk_{table}_workspace_id_workspaces",
        ondelete="CASCADE",
    )


def _member_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["member_id"], ["members.id"], name=f"fk_{table}_member_id_members", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "celebration_settings",
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("streaks", sa.Boolean(), nullable=False),
        sa.Column("birthdays", sa.Boolean(), nullable=False),
        sa.Column("anniversaries", sa.Boolean(), nullable=False),
        sa.Column("streak_length", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        _workspace_key("celebration_settings"),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_celebration_settings"),
    )
    op.create_table(
        "celebration_profiles",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("birthday_month", sa.SmallInteger(), nullable=True),
        sa.Column("birthday_day", sa.SmallInteger(), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _member_key("celebration_profiles"),
        _workspace_key("celebration_profiles"),
        sa.PrimaryKeyConstraint("member_id", name="pk_celebration_profiles"),
    )
    op.create_index(
        "ix_celebration_profiles_workspace_id", "celebration_profiles", ["workspace_id"]
    )
    op.create_table(
        "celebrations",
        sa.Column("id", BIG, nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("posted_at", WHEN, nullable=False),
        _workspace_key("celebrations"),
        _member_key("celebrations"),
        sa.PrimaryKeyConstraint("id", name="pk_celebrations"),
        sa.UniqueConstraint("key", name="uq_celebrations_key"),
    )
    op.create_index("ix_celebrations_workspace_id", "celebrations", ["workspace_id"])
    op.create_index("ix_celebrations_member_id", "celebrations", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_celebrations_member_id", table_name="celebrations")
    op.drop_index("ix_celebrations_workspace_id", table_name="celebrations")
    op.drop_table("celebrations")
    op.drop_index("ix_celebration_profiles_workspace_id", table_name="celebration_profiles")
    op.drop_table("celebration_profiles")
    op.drop_table("celebration_settings")
