"""report generation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 12:40:00

A standup report refresh renders outside the run's lock (so that answers never wait for a large
report) and publishes only if no other refresh took the marks in between:
``standup_runs.report_generation`` counts the takes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema (a plain ADD COLUMN; no batch mode needed on SQLite)."""
    op.add_column(
        "standup_runs",
        sa.Column("report_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("standup_runs", "report_generation")
