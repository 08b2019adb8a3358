"""A workspace's kudos rules and a giver's allowance under them.

The daily quota counts the kudos a giver handed out since *their* local midnight (their zone,
UTC when syncup knows none), so it resets at midnight where they are, whatever the server's or
the team's zone. The cap per receiver counts the current week, Monday 00:00 in the giver's zone.
Both count people thanked: one ``/kudos @a @b`` uses two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.timezones import zone
from storage.kudos import (
    DEFAULT_DAILY_QUOTA,
    DEFAULT_VALUES,
    DEFAULT_WEEKLY_PER_RECEIVER,
    Kudos,
    KudosReceiver,
    KudosSettings,
)
from storage.models import Member


@dataclass(frozen=True)
class Rules:
    daily_quota: int = DEFAULT_DAILY_QUOTA
    weekly_per_receiver: int = DEFAULT_WEEKLY_PER_RECEIVER
    values: tuple[str, ...] = DEFAULT_VALUES
    channel_id: str | None = None
    post_where_given: bool = False

    def values_text(self) -> str:
        return " ".join(f"#{v}" for v in self.values) if self.values else "(none set)"


async def rules_of(session: AsyncSession, workspace_id: int) -> Rules:
    found = await session.get(KudosSettings, workspace_id)
    if found is None:
        return Rules()
    return Rules(
        found.daily_quota,
        found.weekly_per_receiver,
        tuple(found.values),
        found.channel_id,
        found.post_where_given,
    )


def zone_of(member: Member) -> str:
    return member.timezone or "UTC"


def local_midnight(day: date, zone_name: str) -> datetime:
    """The instant ``day`` starts in the zone (a midnight that DST skips maps forward)."""
    return datetime.combine(day, time(0), tzinfo=zone(zone_name)).astimezone(zone("UTC"))


def day_bounds(now: datetime, zone_name: str) -> tuple[datetime, datetime]:
    """The giver's current local day as UTC instants: [start, next start)."""
    today = now.astimezone(zone(zone_name)).date()
    return local_midnight(today, zone_name), local_midnight(today + timedelta(days=1), zone_name)


def week_bounds(now: datetime, zone_name: str) -> tuple[datetime, datetime]:
    """The current week (Monday to Sunday) in the zone, as UTC instants."""
    today = now.astimezone(zone(zone_name)).date()
    monday = today - timedelta(days=today.weekday())
    return local_midnight(monday, zone_name), local_midnight(monday + timedelta(days=7), zone_name)


def describe_reset(at: datetime, zone_name: str, now: datetime) -> str:
    """``00:00 Tue 10 Mar (Europe/Berlin), in 3 h 10 min``."""
    local = at.astimezone(zone(zone_name))
    return f"{local:%H:%M %a} {local.day} {local:%b} ({zone_name}), in {_duration(at - now)}"


def _duration(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() + 59) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts)


@dataclass(frozen=True)
class Allowance:
    """What a giver may still give today."""

    quota: int
    used: int
    resets_at: datetime
    zone: str

    @property
    def left(self) -> int:
        return max(0, self.quota - self.used)


async def given_since(session: AsyncSession, giver_id: int, since: datetime) -> int:
    """People thanked by ``giver_id`` since ``since`` (one per receiver of each kudos)."""
    count = await session.scalar(
        select(func.count())
        .select_from(KudosReceiver)
        .join(Kudos, Kudos.id == KudosReceiver.kudos_id)
        .where(Kudos.giver_id == giver_id, Kudos.given_at >= since)
    )
    return int(count or 0)


async def allowance(session: AsyncSession, rules: Rules, giver: Member, now: datetime) -> Allowance:
    zone_name = zone_of(giver)
    start, resets_at = day_bounds(now, zone_name)
    used = await given_since(session, giver.id, start)
    return Allowance(rules.daily_quota, used, resets_at, zone_name)


async def given_this_week(
    session: AsyncSession, giver: Member, receiver_ids: list[int], now: datetime
) -> tuple[dict[int, int], datetime]:
    """How many kudos ``giver`` gave each receiver this week (their zone), and when the next
    week starts."""
    start, next_week = week_bounds(now, zone_of(giver))
    rows = await session.execute(
        select(KudosReceiver.receiver_id, func.count())
        .join(Kudos, Kudos.id == KudosReceiver.kudos_id)
        .where(
            Kudos.giver_id == giver.id,
            Kudos.given_at >= start,
            KudosReceiver.receiver_id.in_(receiver_ids),
        )
        .group_by(KudosReceiver.receiver_id)
    )
    return {int(r): int(n) for r, n in rows.all()}, next_week
