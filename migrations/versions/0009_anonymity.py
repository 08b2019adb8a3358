"""anonymity that survives a copy of the data files

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:50:00

An open anonymous poll's keyed ballots and its secret move out of ``poll_ballots`` and
``polls.secret`` into tables of the poll's own, ``poll_<id>_keyed`` and ``poll_<id>_secret``,
which its close drops (see ``storage/polls.py``); ``polls.secret`` goes. ``polls.published_voters``
(how many had answered when an anonymous poll's results were shown) is new, filled in for closed
polls whose results were shown, so that a reopened poll's next result keeps its distance from
the last one. On PostgreSQL,
``polls`` and ``poll_ballots`` are then rewritten (``CLUSTER``, which takes their locks for the
length of the copy: run it while the bot is stopped), so that no dead row version or free space
in their files keeps a secret or a key of a poll closed before this revision.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN_TABLE = re.compile(r"poll_(\d+)_(keyed|secret)")

polls = sa.table(
    "polls",
    sa.column("id", sa.Integer),
    sa.column("anonymous", sa.Boolean),
    sa.column("closed_at", sa.DateTime(timezone=True)),
    sa.column("secret", sa.LargeBinary),
)
ballots = sa.table(
    "poll_ballots",
    sa.column("poll_id", sa.Integer),
    sa.column("voter_key", sa.String),
    sa.column("choice", sa.Integer),
    sa.column("text", sa.Text),
    sa.column("member_id", sa.Integer),
)


def _keyed(poll_id: int) -> sa.Table:
    # As storage.polls.keyed_table made it at this revision.
    return sa.Table(
        f"poll_{poll_id}_keyed",
        sa.MetaData(),
        sa.Column("voter_key", sa.String(64), primary_key=True),
        sa.Column("choice", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.Text),
        sqlite_with_rowid=False,
    )


def _secret(poll_id: int) -> sa.Table:
    return sa.Table(
        f"poll_{poll_id}_secret",
        sa.MetaData(),
        sa.Column("secret", sa.LargeBinary(64), nullable=False),
    )


def upgrade() -> None:
    """Upgrade schema."""
    if not op.get_context().as_sql:  # offline SQL has no rows to move
        _move_open_polls_out()
    # A plain DROP COLUMN (SQLite 3.35+), not batch mode: ``alembic upgrade --sql`` works
    # without a database. SQLite rewrites every row without the column, and its freed space is
    # overwritten under secure_delete (syncup checkpoints the WAL at start).
    op.drop_column("polls", "secret")
    op.add_column("polls", sa.Column("published_voters", sa.Integer(), nullable=True))
    # Anonymous polls whose results were shown at their close: how many had answered.
    op.execute(
        "UPDATE polls SET published_voters = (SELECT count(*) FROM poll_participants p "
        "WHERE p.poll_id = polls.id AND p.voted = true) "
        "WHERE anonymous = true AND closed_at IS NOT NULL AND threshold <= "
        "(SELECT count(*) FROM poll_participants p WHERE p.poll_id = polls.id AND p.voted = true)"
    )
    if op.get_context().dialect.name == "postgresql":
        # A rewrite into new files: live rows only, the dropped column nulled out.
        op.execute("CLUSTER polls USING pk_polls")
        op.execute("CLUSTER poll_ballots USING pk_poll_ballots")


def _move_open_polls_out() -> None:
    bind = op.get_bind()
    still_open = bind.execute(
        sa.select(polls.c.id, polls.c.secret)
        .where(
            polls.c.anonymous.is_(True),
            polls.c.closed_at.is_(None),
            polls.c.secret.is_not(None),
        )
        .order_by(polls.c.id)
    ).all()
    for poll_id, secret in still_open:
        keyed, secret_table = _keyed(poll_id), _secret(poll_id)
        keyed.create(bind)
        secret_table.create(bind)
        bind.execute(sa.insert(secret_table).values(secret=secret))
        rows = bind.execute(
            sa.select(ballots.c.voter_key, ballots.c.choice, ballots.c.text).where(
                ballots.c.poll_id == poll_id
            )
        ).all()
        if rows:
            bind.execute(
                sa.insert(keyed), [{"voter_key": k, "choice": c, "text": t} for k, c, t in rows]
            )
        bind.execute(sa.delete(ballots).where(ballots.c.poll_id == poll_id))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("polls", "published_voters")
    op.add_column("polls", sa.Column("secret", sa.LargeBinary(length=64), nullable=True))
    if op.get_context().as_sql:
        return
    bind = op.get_bind()
    names = sa.inspect(bind).get_table_names()
    ids = sorted({int(m.group(1)) for n in names if (m := OWN_TABLE.fullmatch(n))})
    for poll_id in ids:
        keyed, secret_table = _keyed(poll_id), _secret(poll_id)
        if keyed.name in names and secret_table.name in names:
            secret = bind.execute(sa.select(secret_table.c.secret)).scalar()
            bind.execute(sa.update(polls).where(polls.c.id == poll_id).values(secret=secret))
            rows = bind.execute(sa.select(keyed.c.voter_key, keyed.c.choice, keyed.c.text)).all()
            if rows:
                bind.execute(
                    sa.insert(ballots),
                    [
                        {"poll_id": poll_id, "voter_key": k, "choice": c, "text": t}
                        for k, c, t in rows
                    ],
                )
        keyed.drop(bind, checkfirst=True)
        secret_table.drop(bind, checkfirst=True)
