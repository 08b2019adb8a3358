"""weekly leadership digests: digests, their teams and leaders; blockers indexed for them

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 13:00:00

``digests`` (where, when and which sections), ``digest_teams`` (a standup or a RACI area each),
``digest_leaders`` (who also gets it by DM); two indexes on ``blockers`` for the digest's
figures (by workspace and creation time, by reporter).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("owner_id", BIG, nullable=True),
        sa.Column("channel_id", BIG, nullable=False),
        sa.Column("day_of_week", sa.Integer(), nullable=False),
        sa.Column("time_of_day", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_digests_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["members.id"], name="fk_digests_owner_id_members", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name="fk_digests_channel_id_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_digests"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_digests_workspace_id_name"),
    )
    op.create_table(
        "digest_teams",
        sa.Column("id", BIG, nullable=False),
        sa.Column("digest_id", BIG, nullable=False),
        sa.Column("standup_id", BIG, nullable=True),
        sa.Column("area_id", BIG, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["digest_id"],
            ["digests.id"],
            name="fk_digest_teams_digest_id_digests",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["standup_id"],
            ["standups.id"],
            name="fk_digest_teams_standup_id_standups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["raci_areas.id"],
            name="fk_digest_teams_area_id_raci_areas",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_digest_teams"),
    )
    op.create_index("ix_digest_teams_digest_id", "digest_teams", ["digest_id"])
    op.create_index("ix_digest_teams_standup_id", "digest_teams", ["standup_id"])
    op.create_index("ix_digest_teams_area_id", "digest_teams", ["area_id"])
    op.create_table(
        "digest_leaders",
        sa.Column("digest_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["digest_id"],
            ["digests.id"],
            name="fk_digest_leaders_digest_id_digests",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name="fk_digest_leaders_member_id_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest_id", "member_id", name="pk_digest_leaders"),
    )
    op.create_index("ix_digest_leaders_member_id", "digest_leaders", ["member_id"])
    op.create_index("ix_blockers_workspace_created", "blockers", ["workspace_id", "created_at"])
    op.create_index("ix_blockers_member_id", "blockers", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_blockers_member_id", table_name="blockers")
    op.drop_index("ix_blockers_workspace_created", table_name="blockers")
    op.drop_index("ix_digest_leaders_member_id", table_name="digest_leaders")
    op.drop_table("digest_leaders")
    op.drop_index("ix_digest_teams_area_id", table_name="digest_teams")
    op.drop_index("ix_digest_teams_standup_id", table_name="digest_teams")
    op.drop_index("ix_digest_teams_digest_id", table_name="digest_teams")
    op.drop_table("digest_teams")
    op.drop_table("digests")
