"""A workspace's celebration switches and a member's profile, with the defaults applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.celebrations import DEFAULT_STREAK_LENGTH, CelebrationProfile, CelebrationSettings

MIN_STREAK = 2
MAX_STREAK = 500


@dataclass(frozen=True)
class Rules:
    streaks: bool = True
    birthdays: bool = True
    anniversaries: bool = True
    streak_length: int = DEFAULT_STREAK_LENGTH
    channel_id: str | None = None


def rules_from(row: CelebrationSettings | None) -> Rules:
    if row is None:
        return Rules()
    return Rules(row.streaks, row.birthdays, row.anniversaries, row.streak_length, row.channel_id)


async def rules_of(session: AsyncSession, workspace_id: int) -> Rules:
    return rules_from(await session.get(CelebrationSettings, workspace_id))


async def settings_row(
    session: AsyncSession, workspace_id: int, now: datetime
) -> CelebrationSettings:
    """The workspace's settings row, created with the defaults when it has none."""
    row = await session.get(CelebrationSettings, workspace_id)
    if row is None:
        defaults = Rules()
        row = CelebrationSettings(
            workspace_id=workspace_id,
            streaks=defaults.streaks,
            birthdays=defaults.birthdays,
            anniversaries=defaults.anniversaries,
            streak_length=defaults.streak_length,
            channel_id=None,
            updated_at=now,
        )
        session.add(row)
    return row


async def profile_row(
    session: AsyncSession, workspace_id: int, member_id: int, now: datetime
) -> CelebrationProfile:
    """The member's profile row, created empty when they have none."""
    row = await session.get(CelebrationProfile, member_id)
    if row is None:
        row = CelebrationProfile(
            member_id=member_id, workspace_id=workspace_id, opted_out=False, updated_at=now
        )
        session.add(row)
    return row
