"""member platform admin

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:55:00

``members.is_platform_admin``: whether the member was a workspace admin on the platform (Slack
admin or owner, Discord administrator) when they last used syncup. Such a member is a syncup
admin whatever role they are given, so ``/syncup role`` refuses to give them a lesser one and
``/syncup roles`` lists them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "members",
        sa.Column("is_platform_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("members", "is_platform_admin")
