"""When a new standup's first prompts go out, told to its owner at creation.

A standup created after today's prompt time (say at 09:30 for 09:00) does not prompt anyone at
once (its trigger starts at its creation, see ``schedules.StandupTrigger``): the owner is told
when the first prompts go out and, if today's time has passed for some participants while their
answer window would still be open, offered a button that asks those now, for today.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.chat import Actions, Button, Plain, Section, text
from bot.features.standups.report_messages import day_label
from bot.features.standups.schedules import (
    member_zone,
    prompt_time,
    runs_on,
    trigger_for,
)
from bot.scheduling.scheduler import next_fire_time
from bot.timezones import zone as zone_info
from storage.models import Member, Standup

START_ACTION = "standup-start-today"


@dataclass(frozen=True)
class Missed:
    """A participant whose prompt time today has passed, inside today's answer window."""

    member: Member
    local_date: date


def missed_today(standup: Standup, people: Sequence[Member], now: datetime) -> list[Missed]:
    window = timedelta(minutes=standup.window_minutes)
    out: list[Missed] = []
    for member in people:
        zone = member_zone(standup, member)
        today = now.astimezone(zone_info(zone)).date()
        if not runs_on(standup, today):
            continue
        at = prompt_time(standup, zone, today)
        if at <= now < at + window:
            out.append(Missed(member, today))
    return out


def _when(at: datetime, zone: str) -> str:
    local = at.astimezone(zone_info(zone))
    return f"{day_label(local.date())} at {local:%H:%M} ({zone})"


def first_prompts_note(
    standup: Standup, people: Sequence[Member], owner: Member, now: datetime
) -> list[Any]:
    """What the owner reads after creating ``standup``: when the first prompts go out, and
    whom today's time has already passed (with a button to ask them now)."""
    if not people:
        return []
    shown_zone = member_zone(standup, owner)
    firsts = [
        fire
        for member in people
        if (fire := next_fire_time(trigger_for(standup, member_zone(standup, member)), now))
        is not None
    ]
    blocks: list[Any] = []
    if firsts:
        spread = ""
        if not standup.team_timezone and len({member_zone(standup, m) for m in people}) > 1:
            spread = f"; each participant is asked at {standup.time_of_day} their own time"
        blocks.append(
            Section(text(f"The first prompts go out {_when(min(firsts), shown_zone)}{spread}."))
        )
    missed = missed_today(standup, people, now)
    if missed:
        names = ", ".join(m.member.display_name or m.member.platform_user_id for m in missed)
        blocks += [
            Section(
                text(
                    f"Today's {standup.time_of_day} has already passed for {len(missed)} "
                    "participant(s) (",
                    Plain(names),
                    "): nobody was asked today. Ask them now, for today?",
                )
            ),
            Actions((Button("Ask them now", f"{START_ACTION}:{standup.id}", style="primary"),)),
        ]
    return blocks


__all__ = ["START_ACTION", "Missed", "first_prompts_note", "missed_today"]
