"""blockers as tracked items, and the RACI matrix

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:10:00

``raci_areas`` and ``raci_assignments`` (the matrix), ``blocker_settings`` (the workspace's
default escalation policy), ``blocker_events`` (a blocker's timeline), and on ``blockers``: its
area, what it waits on, severity, source, acknowledgement, snooze, card and escalation state.
``blockers.next_escalation_at`` is indexed: the escalation sweep finds due blockers by it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)

_MEMBER_REFS = ("waiting_on_member_id", "acknowledged_by_id", "resolved_by_id")


def _blockers(*, new: bool) -> sa.Table:
    """``blockers`` as it is before (0002) or after this revision: SQLite adds foreign keys by
    copying the table, and ``alembic upgrade --sql`` cannot reflect it."""
    columns: list[sa.Column[object]] = [
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("standup_answer_id", BIG, nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", name="blocker_status", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("resolved_at", WHEN, nullable=True),
    ]
    constraints: list[sa.Constraint] = [
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_blockers_member_id_members", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["standup_answer_id"],
            ["standup_answers.id"],
            name="fk_blockers_standup_answer_id_standup_answers",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_blockers_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_blockers"),
        sa.UniqueConstraint("standup_answer_id", name="uq_blockers_standup_answer_id"),
    ]
    if new:
        columns += _new_columns()
        constraints += _new_foreign_keys()
    table = sa.Table("blockers", sa.MetaData(), *columns, *constraints)
    if new:
        for column in _NEW_INDEXES:
            sa.Index(f"ix_blockers_{column}", table.c[column])
    return table


_NEW_INDEXES = ("area_id", "waiting_on_member_id", "waiting_on_area_id", "next_escalation_at")


def _new_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("source", sa.String(length=16), server_default="standup", nullable=False),
        sa.Column("source_link", sa.Text(), nullable=True),
        sa.Column("area_id", BIG, nullable=True),
        sa.Column("waiting_on_member_id", BIG, nullable=True),
        sa.Column("waiting_on_area_id", BIG, nullable=True),
        sa.Column("severity", sa.String(length=16), server_default="normal", nullable=False),
        sa.Column("updated_at", WHEN, nullable=True),
        sa.Column("last_reported_at", WHEN, nullable=True),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.Column("acknowledged_by_id", BIG, nullable=True),
        sa.Column("resolved_by_id", BIG, nullable=True),
        sa.Column("snoozed_until", WHEN, nullable=True),
        sa.Column("card_outbox_id", BIG, nullable=True),
        sa.Column("card_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_escalation_at", WHEN, nullable=True),
        *(
            sa.Column(name, sa.Integer(), server_default="0", nullable=False)
            for name in ("escalation_level", "escalation_round", "escalation_generation")
        ),
    ]


def _new_foreign_keys() -> list[sa.Constraint]:
    keys: list[sa.Constraint] = [
        sa.ForeignKeyConstraint(
            [column],
            ["raci_areas.id"],
            name=f"fk_blockers_{column}_raci_areas",
            ondelete="SET NULL",
        )
        for column in ("area_id", "waiting_on_area_id")
    ]
    keys += [
        sa.ForeignKeyConstraint(
            [column], ["members.id"], name=f"fk_blockers_{column}_members", ondelete="SET NULL"
        )
        for column in _MEMBER_REFS
    ]
    keys.append(
        sa.ForeignKeyConstraint(
            ["card_outbox_id"],
            ["outbox.id"],
            name="fk_blockers_card_outbox_id_outbox",
            ondelete="SET NULL",
        )
    )
    return keys


def upgrade() -> None:
    op.create_table(
        "raci_areas",
        sa.Column("id", BIG, nullable=False),
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("work_days", sa.JSON(), nullable=False),
        sa.Column("day_start_minute", sa.Integer(), nullable=False),
        sa.Column("day_end_minute", sa.Integer(), nullable=False),
        sa.Column("holiday_country", sa.String(length=8), nullable=True),
        sa.Column("holiday_subdivision", sa.String(length=16), nullable=True),
        sa.Column("custom_holidays", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_raci_areas_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_raci_areas"),
        sa.UniqueConstraint("workspace_id", "key", name="uq_raci_areas_workspace_id_key"),
    )
    op.create_table(
        "raci_assignments",
        sa.Column("id", BIG, nullable=False),
        sa.Column("area_id", BIG, nullable=False),
        sa.Column("role", sa.String(length=1), nullable=False),
        sa.Column("who", sa.String(length=80), nullable=False),
        sa.Column("member_id", BIG, nullable=True),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["raci_areas.id"],
            name="fk_raci_assignments_area_id_raci_areas",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name="fk_raci_assignments_member_id_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_raci_assignments"),
        sa.UniqueConstraint("area_id", "role", "who", name="uq_raci_assignments_area_id_role_who"),
    )
    op.create_index("ix_raci_assignments_area_id", "raci_assignments", ["area_id"])
    op.create_index("ix_raci_assignments_member_id", "raci_assignments", ["member_id"])
    op.create_table(
        "blocker_settings",
        sa.Column("workspace_id", BIG, nullable=False),
        sa.Column("default_policy", sa.JSON(), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_blocker_settings_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_blocker_settings"),
    )
    with op.batch_alter_table("blockers", copy_from=_blockers(new=False)) as batch:
        for column in _new_columns():
            batch.add_column(column)
        for key in _new_foreign_keys():
            assert isinstance(key, sa.ForeignKeyConstraint)
            batch.create_foreign_key(
                key.name,
                key.elements[0].target_fullname.split(".")[0],
                key.column_keys,
                ["id"],
                ondelete="SET NULL",
            )
        for column in _NEW_INDEXES:
            batch.create_index(f"ix_blockers_{column}", [column])
    op.create_table(
        "blocker_events",
        sa.Column("id", BIG, nullable=False),
        sa.Column("blocker_id", BIG, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor_id", BIG, nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["blocker_id"],
            ["blockers.id"],
            name="fk_blocker_events_blocker_id_blockers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["members.id"],
            name="fk_blocker_events_actor_id_members",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_blocker_events"),
    )
    op.create_index("ix_blocker_events_blocker_id", "blocker_events", ["blocker_id"])


def downgrade() -> None:
    op.drop_index("ix_blocker_events_blocker_id", table_name="blocker_events")
    op.drop_table("blocker_events")
    # Statuses and severities the old schema does not know become what it does.
    op.execute("UPDATE blockers SET status = 'open' WHERE status = 'acknowledged'")
    op.execute("UPDATE blockers SET status = 'resolved' WHERE status = 'cancelled'")
    with op.batch_alter_table("blockers", copy_from=_blockers(new=True)) as batch:
        for column in _NEW_INDEXES:
            batch.drop_index(f"ix_blockers_{column}")
        for key in _new_foreign_keys():
            batch.drop_constraint(str(key.name), type_="foreignkey")
        for old in reversed(_new_columns()):
            batch.drop_column(old.name)
    op.drop_table("blocker_settings")
    op.drop_index("ix_raci_assignments_member_id", table_name="raci_assignments")
    op.drop_index("ix_raci_assignments_area_id", table_name="raci_assignments")
    op.drop_table("raci_assignments")
    op.drop_table("raci_areas")
