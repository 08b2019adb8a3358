"""Remember the channel a slash command was typed in, with its name.

A slash command carries its channel's id and name; storing them before the core sees the command
lets ``#team`` (typed in #team) resolve without asking Slack. Members and channels named in
commands and forms that syncup has not stored yet are looked up by the core itself, through the
port's directory (:class:`adapters.slack.port.SlackPort`).
"""

from __future__ import annotations

from datetime import datetime

from bot import directory
from storage.db import Database

PLATFORM = "slack"


class ChannelRecorder:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self, team_id: str, team_name: str, channel_id: str, channel_name: str, now: datetime
    ) -> None:
        """Store the workspace and the channel (not DMs, whose names are not channel names)."""
        if not channel_id or channel_id.startswith("D") or not channel_name:
            return
        if channel_name in ("directmessage", "privategroup", "mpdm"):
            return
        async with self.db.transaction() as session:
            workspace = await directory.ensure_workspace(session, PLATFORM, team_id, team_name, now)
            await directory.ensure_channel(session, workspace, channel_id, channel_name, now)
