"""Slack installations (multi-workspace OAuth), on our metadata and created by our migrations.

The columns follow slack_sdk's SQLAlchemy installation store (``slack_installations``,
``slack_bots``) so that its model objects map one to one; tokens and refresh tokens are stored
encrypted (:mod:`adapters.slack.oauth` encrypts them with ``[slack] token_encryption_key``), never
in clear. ``slack_oauth_states`` holds the one-use ``state`` values of installs in progress.
The rows are keyed by Slack's team and enterprise ids and are deleted when the app is uninstalled
or its tokens revoked; the workspace's own data follows after the grace period
(:mod:`bot.workspace_removal`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class SlackInstallation(Base):
    """One install by one person (the user token is theirs); the newest wins."""

    __tablename__ = "slack_installations"
    __table_args__ = (
        Index(
            "ix_slack_installations_lookup",
            "client_id",
            "enterprise_id",
            "team_id",
            "user_id",
            "installed_at",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_url: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str | None] = mapped_column(String(200))
    bot_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(String(1000))
    bot_refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[str] = mapped_column(String(32))
    user_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    user_scopes: Mapped[str | None] = mapped_column(String(1000))
    user_refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    user_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_enterprise_install: Mapped[bool] = mapped_column(default=False)
    token_type: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlackBot(Base):
    """The bot token of a workspace (or an org), the newest install's."""

    __tablename__ = "slack_bots"
    __table_args__ = (
        Index("ix_slack_bots_lookup", "client_id", "enterprise_id", "team_id", "installed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str | None] = mapped_column(String(200))
    bot_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(String(1000))
    bot_refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_enterprise_install: Mapped[bool] = mapped_column(default=False)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlackOAuthState(Base):
    """A ``state`` handed out by ``/slack/install``; consumed once by the redirect."""

    __tablename__ = "slack_oauth_states"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    state: Mapped[str] = mapped_column(String(200), unique=True)
    expire_at: Mapped[datetime] = mapped_column(UTCDateTime)
