"""report dirty

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:43:50.305133

Reports are refreshed after the answer's transaction: an answer, skip or edit marks its prompt
``report_dirty`` and its run ``report_dirty_since``; the refresh that renders them clears both.
Also indexes ``standup_prompts.member_id`` (a new prompt closes the member's other DM
conversations by member).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema.

    Plain ADD COLUMN / CREATE INDEX / DROP COLUMN (SQLite 3.35+) rather than batch mode: none of
    them needs SQLite's move-and-copy, and so ``alembic upgrade --sql`` works without a database.
    """
    op.add_column(
        "standup_prompts",
        sa.Column("report_dirty", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(
        op.f("ix_standup_prompts_member_id"), "standup_prompts", ["member_id"], unique=False
    )
    op.add_column(
        "standup_runs", sa.Column("report_dirty_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("standup_runs", "report_dirty_since")
    op.drop_index(op.f("ix_standup_prompts_member_id"), table_name="standup_prompts")
    op.drop_column("standup_prompts", "report_dirty")
