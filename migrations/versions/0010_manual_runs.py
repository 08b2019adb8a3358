"""manual runs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:45:00

A standup run started by hand (``/standup run``) is a run of its own, beside the scheduled run
of the same date: ``standup_runs.occasion`` ("" for the scheduled run, ``manual:<event id>`` for
one started by hand) joins the run's unique key, so a run by hand never takes anyone's scheduled
prompt of that date.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _standup_runs(*, with_occasion: bool) -> sa.Table:
    """``standup_runs`` as it is before (0007) or after this revision: SQLite changes a unique
    key by copying the table, and ``alembic upgrade --sql`` cannot reflect it."""
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    columns: list[sa.Column[object]] = [
        sa.Column("id", big, nullable=False),
        sa.Column("standup_id", big, nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("report_outbox_id", big, nullable=True),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report_dirty_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report_generation", sa.Integer(), server_default="0", nullable=False),
    ]
    key = ["standup_id", "run_date"]
    if with_occasion:
        columns.append(
            sa.Column("occasion", sa.String(length=120), server_default="", nullable=False)
        )
        key.append("occasion")
    return sa.Table(
        "standup_runs",
        sa.MetaData(),
        *columns,
        sa.ForeignKeyConstraint(
            ["report_outbox_id"],
            ["outbox.id"],
            name="fk_standup_runs_report_outbox_id_outbox",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["standup_id"],
            ["standups.id"],
            name="fk_standup_runs_standup_id_standups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_standup_runs"),
        sa.UniqueConstraint(*key, name="uq_standup_runs_" + "_".join(key)),
    )


@contextmanager
def _sqlite_foreign_keys_off() -> Iterator[None]:
    """SQLite copies ``standup_runs`` to change its key, and dropping the old copy with foreign
    keys on would cascade to every prompt and answer. The pragma is ignored inside a
    transaction, so the transaction is ended around it (the alembic recipe for SQLite), and the
    keys are checked before they are turned on again."""
    if op.get_context().dialect.name != "sqlite":
        yield
        return
    op.execute("COMMIT")
    op.execute("PRAGMA foreign_keys=OFF")
    op.execute("BEGIN IMMEDIATE")
    yield
    if not context.is_offline_mode():
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by the table copy: {broken[:5]}")
    op.execute("COMMIT")
    op.execute("PRAGMA foreign_keys=ON")
    op.execute("BEGIN IMMEDIATE")


def upgrade() -> None:
    """Upgrade schema (batch mode: SQLite copies the table to change its unique key)."""
    with (
        _sqlite_foreign_keys_off(),
        op.batch_alter_table(
            "standup_runs", copy_from=_standup_runs(with_occasion=False)
        ) as batch_op,
    ):
        batch_op.add_column(
            sa.Column("occasion", sa.String(length=120), server_default="", nullable=False)
        )
        batch_op.drop_constraint("uq_standup_runs_standup_id_run_date", type_="unique")
        batch_op.create_unique_constraint(
            "uq_standup_runs_standup_id_run_date_occasion",
            ["standup_id", "run_date", "occasion"],
        )


def downgrade() -> None:
    """Downgrade schema: runs started by hand go (their prompts and answers with them), since
    the old key allows one run per date."""
    by_hand = (
        "SELECT a.id FROM standup_answers a JOIN standup_prompts p ON p.id = a.prompt_id"
        " JOIN standup_runs r ON r.id = p.run_id WHERE r.occasion != ''"
    )
    op.execute(
        sa.text(
            f"UPDATE blockers SET standup_answer_id = NULL WHERE standup_answer_id IN ({by_hand})"
        )
    )
    op.execute(
        sa.text(
            "DELETE FROM standup_answers WHERE prompt_id IN (SELECT p.id FROM standup_prompts p"
            " JOIN standup_runs r ON r.id = p.run_id WHERE r.occasion != '')"
        )
    )
    op.execute(
        sa.text(
            "DELETE FROM standup_prompts WHERE run_id IN"
            " (SELECT id FROM standup_runs WHERE occasion != '')"
        )
    )
    op.execute(sa.text("DELETE FROM standup_runs WHERE occasion != ''"))
    with (
        _sqlite_foreign_keys_off(),
        op.batch_alter_table(
            "standup_runs", copy_from=_standup_runs(with_occasion=True)
        ) as batch_op,
    ):
        batch_op.drop_constraint("uq_standup_runs_standup_id_run_date_occasion", type_="unique")
        batch_op.create_unique_constraint(
            "uq_standup_runs_standup_id_run_date", ["standup_id", "run_date"]
        )
        batch_op.drop_column("occasion")
