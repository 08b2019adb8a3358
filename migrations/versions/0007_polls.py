"""polls

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 15:00:00

Polls, their participants and ballots, and teams' pulse checks (see ``storage/polls.py`` for why
the ballot and participant tables look the way they do).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "pulses",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("team_id", BigId, nullable=False),
        sa.Column("owner_id", BigId, nullable=True),
        sa.Column("day_of_week", sa.Integer(), nullable=False),
        sa.Column("time_of_day", sa.String(length=5), nullable=False),
        sa.Column("every_weeks", sa.Integer(), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("open_days", sa.Integer(), nullable=False),
        sa.Column("questions_per_round", sa.Integer(), nullable=False),
        sa.Column("bank", sa.JSON(), nullable=False),
        sa.Column("next_question", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("digest_day", sa.Integer(), nullable=False),
        sa.Column("digest_time", sa.String(length=5), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["members.id"],
            name=op.f("fk_pulses_owner_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_pulses_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_pulses_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pulses")),
        sa.UniqueConstraint("team_id", name=op.f("uq_pulses_team_id")),
    )
    op.create_table(
        "pulse_rounds",
        sa.Column("id", BigId, nullable=False),
        sa.Column("pulse_id", BigId, nullable=False),
        sa.Column("period_date", sa.Date(), nullable=False),
        sa.Column("sent_at", When, nullable=False),
        sa.Column("closes_at", When, nullable=False),
        sa.Column("closed_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["pulse_id"],
            ["pulses.id"],
            name=op.f("fk_pulse_rounds_pulse_id_pulses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pulse_rounds")),
        sa.UniqueConstraint(
            "pulse_id", "period_date", name=op.f("uq_pulse_rounds_pulse_id_period_date")
        ),
    )
    op.create_table(
        "polls",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("team_id", BigId, nullable=True),
        sa.Column("round_id", BigId, nullable=True),
        sa.Column("question_key", sa.String(length=64), nullable=True),
        sa.Column("channel_id", BigId, nullable=True),
        sa.Column("creator_id", BigId, nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("max_choices", sa.Integer(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("results", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("secret", sa.LargeBinary(length=64), nullable=True),
        sa.Column("opens_at", When, nullable=False),
        sa.Column("closes_at", When, nullable=True),
        sa.Column("closed_at", When, nullable=True),
        sa.Column("close_generation", sa.Integer(), nullable=False),
        sa.Column("remind_at", When, nullable=True),
        sa.Column("result_pool_id", BigId, nullable=True),
        sa.Column("message_outbox_id", BigId, nullable=True),
        sa.Column("live_outbox_id", BigId, nullable=True),
        sa.Column("live_posted_at", When, nullable=True),
        sa.Column("results_version", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_polls_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["members.id"],
            name=op.f("fk_polls_creator_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["live_outbox_id"],
            ["outbox.id"],
            name=op.f("fk_polls_live_outbox_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_outbox_id"],
            ["outbox.id"],
            name=op.f("fk_polls_message_outbox_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["result_pool_id"],
            ["polls.id"],
            name=op.f("fk_polls_result_pool_id_polls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["pulse_rounds.id"],
            name=op.f("fk_polls_round_id_pulse_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_polls_team_id_teams"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_polls_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polls")),
    )
    op.create_index("ix_polls_open", "polls", ["closed_at", "closes_at"])
    op.create_index("ix_polls_team_closed", "polls", ["team_id", "closed_at"])
    op.create_index(op.f("ix_polls_round_id"), "polls", ["round_id"])
    op.create_index(op.f("ix_polls_result_pool_id"), "polls", ["result_pool_id"])
    op.create_table(
        "poll_participants",
        sa.Column("poll_id", BigId, nullable=False),
        sa.Column("member_id", BigId, nullable=False),
        sa.Column("voted", sa.Boolean(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_poll_participants_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_poll_participants_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_id", "member_id", name=op.f("pk_poll_participants")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_poll_participants_member_id"), "poll_participants", ["member_id"])
    op.create_table(
        "poll_ballots",
        sa.Column("poll_id", BigId, nullable=False),
        sa.Column("voter_key", sa.String(length=64), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("member_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_poll_ballots_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["poll_id"],
            ["polls.id"],
            name=op.f("fk_poll_ballots_poll_id_polls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("poll_id", "voter_key", "choice", name=op.f("pk_poll_ballots")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_poll_ballots_member_id"), "poll_ballots", ["member_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("poll_ballots")
    op.drop_table("poll_participants")
    op.drop_table("polls")
    op.drop_table("pulse_rounds")
    op.drop_table("pulses")
