"""standup prompts indexed by member with their run, status and answer time

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 13:30:00

``benchmarks/dashboard.py`` (a year of 5,000 members: 1.3 million prompts): the digest's
"longest silence" and the dashboard's per-member participation read a team's prompts member by
member over the whole year. With ``(member_id)`` alone that is one heap visit per prompt
(13,000 for a team of 50); ``(member_id, run_id, status, answered_at)`` answers it from the
index (an index-only scan), and the old one-column index is a prefix of it, so it goes.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_standup_prompts_member_run",
        "standup_prompts",
        ["member_id", "run_id", "status", "answered_at"],
    )
    op.drop_index("ix_standup_prompts_member_id", table_name="standup_prompts")


def downgrade() -> None:
    op.create_index("ix_standup_prompts_member_id", "standup_prompts", ["member_id"])
    op.drop_index("ix_standup_prompts_member_run", table_name="standup_prompts")
