"""Dashboard one-time sign-in links

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 13:00:00

``web_login_links``: the SHA-256 of each one-time link ``syncup web login-link`` printed, the
member it signs in, when it expires and when it was used.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_login_links",
        sa.Column("id", BIG, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("used_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name="fk_web_login_links_member_id_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_web_login_links"),
        sa.UniqueConstraint("token_hash", name="uq_web_login_links_token_hash"),
    )
    op.create_index("ix_web_login_links_member_id", "web_login_links", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_web_login_links_member_id", table_name="web_login_links")
    op.drop_table("web_login_links")
