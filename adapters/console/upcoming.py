"""What ``/clock`` says is scheduled next, in words: "close the standup Daily's report for Mon 9
Mar" rather than the schedule's key ``standup:1:run:1:close``.

The keys are the features' stable schedule keys (``bot/features/*/schedules.py``); the names and
dates come from the database. A key this module does not know is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from storage.digest import Digest
from storage.milestones import Milestone
from storage.models import Member, Standup, StandupPrompt, StandupRun, Team
from storage.polls import Poll, Pulse

Describer = Callable[[AsyncSession, re.Match[str]], Awaitable[str]]


def _day(value: date) -> str:
    return f"{value:%a} {value.day} {value:%b}"


async def _standup(session: AsyncSession, standup_id: str) -> str:
    standup = await session.get(Standup, int(standup_id))
    return f"the standup {standup.name}" if standup is not None else f"standup {standup_id}"


async def _run(session: AsyncSession, standup_id: str, run_id: str) -> tuple[str, str]:
    run = await session.get(StandupRun, int(run_id))
    return await _standup(session, standup_id), (_day(run.run_date) if run else "its day")


async def _member(session: AsyncSession, member_id: int) -> str:
    member = await session.get(Member, member_id)
    if member is None:
        return "a member"
    return "@" + (member.display_name or member.platform_user_id)


async def _pulse_team(session: AsyncSession, pulse_id: str) -> str:
    pulse = await session.get(Pulse, int(pulse_id))
    team = await session.get(Team, pulse.team_id) if pulse is not None else None
    return f"team {team.name}" if team is not None else f"pulse {pulse_id}"


async def _poll(session: AsyncSession, poll_id: str) -> str:
    poll = await session.get(Poll, int(poll_id))
    question = f" ({poll.question})" if poll is not None else ""
    return f"poll #{poll_id}{question}"


async def _prompt(session: AsyncSession, m: re.Match[str]) -> str:
    standup = await _standup(session, m["standup"])
    if m["member"] is None:
        return f"send {standup}'s prompts to its participants"
    return f"send {standup}'s prompt to {await _member(session, int(m['member']))}"


async def _reminder(session: AsyncSession, m: re.Match[str]) -> str:
    standup = await _standup(session, m["standup"])
    prompt = await session.get(StandupPrompt, int(m["prompt"]))
    if prompt is None:
        return f"remind a member about {standup}"
    run = await session.get(StandupRun, prompt.run_id)
    day = f" for {_day(run.run_date)}" if run is not None else ""
    return f"remind {await _member(session, prompt.member_id)} about {standup}{day}"


async def _nudge(session: AsyncSession, m: re.Match[str]) -> str:
    standup, day = await _run(session, m["standup"], m["run"])
    return f"nudge the channel about who has not answered {standup} for {day}"


async def _close(session: AsyncSession, m: re.Match[str]) -> str:
    standup, day = await _run(session, m["standup"], m["run"])
    return f"close {standup}'s report for {day}"


async def _refresh(session: AsyncSession, m: re.Match[str]) -> str:
    run = await session.get(StandupRun, int(m["run"]))
    if run is None:
        return "bring a standup report up to date"
    standup = await _standup(session, str(run.standup_id))
    return f"bring {standup}'s report for {_day(run.run_date)} up to date"


async def _milestone(session: AsyncSession, milestone_id: str) -> str:
    milestone = await session.get(Milestone, int(milestone_id))
    return f"the milestone {milestone.name}" if milestone is not None else "a milestone"


async def _member_named(session: AsyncSession, member_id: str) -> str:
    return await _member(session, int(member_id))


async def _run_named(session: AsyncSession, run_id: str) -> str:
    run = await session.get(StandupRun, int(run_id))
    if run is None:
        return "a standup"
    return f"{await _standup(session, str(run.standup_id))} for {_day(run.run_date)}"


async def _digest(session: AsyncSession, digest_id: str) -> str:
    digest = await session.get(Digest, int(digest_id))
    return f"the digest {digest.name}" if digest is not None else "a digest"


Namer = Callable[[AsyncSession, str], Awaitable[str]]

# Keys of one thing named from its id: (pattern with an ``id`` group, namer, words with {}).
_NAMED: tuple[tuple[re.Pattern[str], Namer, str], ...] = (
    (re.compile(r"poll:(?P<id>\d+):close:\d+"), _poll, "close {} and post its results"),
    (re.compile(r"poll:(?P<id>\d+):remind:\d+"), _poll, "remind who has not answered {}"),
    (re.compile(r"pulse:(?P<id>\d+):round"), _pulse_team, "send {}'s next pulse round"),
    (re.compile(r"pulse:(?P<id>\d+):digest"), _pulse_team, "post {}'s weekly pulse digest"),
    (
        re.compile(r"pulse:(?P<id>\d+):round:\d+:close"),
        _pulse_team,
        "close {}'s pulse round and post its results",
    ),
    (
        re.compile(r"pulse:(?P<id>\d+):round:\d+:remind"),
        _pulse_team,
        "remind who has not answered {}'s pulse round",
    ),
    (re.compile(r"milestone:(?P<id>\d+):t-\d+:[\d-]+"), _milestone, "post {}'s countdown"),
    (re.compile(r"digest:(?P<id>\d+)"), _digest, "post {} (one message per team)"),
    (
        re.compile(r"milestone:(?P<id>\d+):overdue:[\d-]+"),
        _milestone,
        "tell the owner of {} that it is overdue",
    ),
    (re.compile(r"celebrate:birthday:(?P<id>\d+)"), _member_named, "celebrate {}'s birthday"),
    (
        re.compile(r"celebrate:anniversary:(?P<id>\d+)"),
        _member_named,
        "celebrate {}'s work anniversary",
    ),
    (
        re.compile(r"celebrate:streaks:run:(?P<id>\d+)"),
        _run_named,
        "celebrate the answer streaks of {}",
    ),
)
_FIXED: dict[str, str] = {
    "housekeeping": "clean up old records (housekeeping)",
    "workspace-removal": "delete the data of workspaces that removed syncup",
}
_STANDUPS: tuple[tuple[re.Pattern[str], Describer], ...] = (
    (re.compile(r"standup:(?P<standup>\d+):(?:team|m:(?P<member>\d+))"), _prompt),
    (re.compile(r"standup:(?P<standup>\d+):remind:(?P<prompt>\d+)"), _reminder),
    (re.compile(r"standup:(?P<standup>\d+):run:(?P<run>\d+):nudge"), _nudge),
    (re.compile(r"standup:(?P<standup>\d+):run:(?P<run>\d+):close"), _close),
    (re.compile(r"standup:run:(?P<run>\d+):refresh@.*"), _refresh),
)


async def in_words(session: AsyncSession, key: str) -> str:
    """What the schedule ``key`` will do, in words; the key itself when it is not known."""
    if key in _FIXED:
        return _FIXED[key]
    for pattern, namer, words in _NAMED:
        match = pattern.fullmatch(key)
        if match is not None:
            return words.format(await namer(session, match["id"]))
    for pattern, describer in _STANDUPS:
        match = pattern.fullmatch(key)
        if match is not None:
            return await describer(session, match)
    return key
