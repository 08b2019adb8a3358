"""milestones and their contributors

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 05:20:00

``milestones`` (a named date in a zone, counted down and celebrated; names unique per workspace
while not cancelled) and ``milestone_contributors`` (who was involved, for the celebration).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _member_key(column: str, ondelete: str = "SET NULL") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["members.id"], name=f"fk_milestones_{column}_members", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "milestones",
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=128), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("area_id", BIG, nullable=True),
        sa.Column("owner_id", BIG, nullable=True),
        sa.Column("created_by_id", BIG, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("countdown_days", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_at", WHEN, nullable=True),
        sa.Column("done_by_id", BIG, nullable=True),
        sa.Column("done_source", sa.String(length=160), nullable=True),
        sa.Column("cancelled_at", WHEN, nullable=True),
        sa.Column("overdue_notified_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_milestones_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["raci_areas.id"],
            name="fk_milestones_area_id_raci_areas",
            ondelete="SET NULL",
        ),
        _member_key("owner_id"),
        _member_key("created_by_id"),
        _member_key("done_by_id"),
        sa.PrimaryKeyConstraint("id", name="pk_milestones"),
        sa.UniqueConstraint("workspace_id", "name_key", name="uq_milestones_workspace_id_name_key"),
    )
    op.create_index("ix_milestones_workspace_id", "milestones", ["workspace_id"])
    op.create_index("ix_milestones_status_due_on", "milestones", ["status", "due_on"])
    op.create_table(
        "milestone_contributors",
        sa.Column("milestone_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name="fk_milestone_contributors_milestone_id_milestones",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name="fk_milestone_contributors_member_id_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("milestone_id", "member_id", name="pk_milestone_contributors"),
    )
    op.create_index("ix_milestone_contributors_member_id", "milestone_contributors", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_milestone_contributors_member_id", table_name="milestone_contributors")
    op.drop_table("milestone_contributors")
    op.drop_index("ix_milestones_status_due_on", table_name="milestones")
    op.drop_index("ix_milestones_workspace_id", table_name="milestones")
    op.drop_table("milestones")
