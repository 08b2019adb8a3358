"""escalation ladders: where a blocker's ladder starts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:30:00

``blockers.escalation_anchor_at`` is when the blocker's ladder (re)started: its levels fire
"after" business time from it. ``escalation_anchor_generation`` is the
``escalation_generation`` the anchor was set for; a change that bumps the generation (an
acknowledgement, a reassignment, a severity change) restarts the ladder from a new anchor.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): SQLite supports it, and ``upgrade --sql`` needs no
    # reflection.
    op.add_column("blockers", sa.Column("escalation_anchor_at", sa.DateTime(timezone=True)))
    op.add_column(
        "blockers",
        sa.Column(
            "escalation_anchor_generation", sa.Integer(), nullable=False, server_default="-1"
        ),
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN: SQLite has it since 3.35 (2021), and the columns have no
    # index or constraint that would need the batch copy.
    op.drop_column("blockers", "escalation_anchor_generation")
    op.drop_column("blockers", "escalation_anchor_at")
