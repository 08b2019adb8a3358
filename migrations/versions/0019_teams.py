"""Microsoft Teams conversation references

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 05:40:00

``teams_references``: per workspace (a Teams tenant), one conversation reference per member
(keyed by Entra object id) and per channel (keyed by conversation id), for proactive messages.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teams_references",
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=512), nullable=False),
        sa.Column("teams_id", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.Text(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_teams_references_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_teams_references"),
        sa.UniqueConstraint(
            "workspace_id", "kind", "key", name="uq_teams_references_workspace_id_kind_key"
        ),
    )


def downgrade() -> None:
    op.drop_table("teams_references")
