"""manual runs

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06 23:45:00

A standup run started by hand (``/standup run``) is a run of its own, beside the scheduled run
of the same date: ``standup_runs.occasion`` ("" for the scheduled run, ``manual:<event id>`` for
one started by hand) joins the run's unique key, so a run by hand never takes anyone's scheduled
prompt of that date.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema (batch mode: SQLite rebuilds the table to change its unique key)."""
    with op.batch_alter_table("standup_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("occasion", sa.String(length=120), server_default="", nullable=False)
        )
        batch_op.drop_constraint("uq_standup_runs_standup_id_run_date", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_standup_runs_standup_id_run_date_occasion"),
            ["standup_id", "run_date", "occasion"],
        )


def downgrade() -> None:
    """Downgrade schema: runs started by hand go (their prompts and answers with them), since
    the old key allows one run per date."""
    op.execute(sa.text("DELETE FROM standup_runs WHERE occasion != ''"))
    with op.batch_alter_table("standup_runs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_standup_runs_standup_id_run_date_occasion", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_standup_runs_standup_id_run_date"), ["standup_id", "run_date"]
        )
        batch_op.drop_column("occasion")
