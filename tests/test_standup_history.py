"""`/standup history` and `/standup stats` on SQLite and PostgreSQL, from ORM-built rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Context, Header, Message, Plain, Section, Text, UserMention
from bot.errors import UserError
from bot.features.standups.history import SECTION_CHARS, history, resolve_standup, stats
from storage.db import Database
from storage.models import (
    Channel,
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
    Workspace,
)

# Tuesday 2026-03-10, 12:00 UTC: 13:00 in Berlin, 08:00 in New York, 01:00 on the 11th in Auckland.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
QUESTIONS = ["What did you do?", "What will you do?", "Anything blocking you?"]


@dataclass
class World:
    session: AsyncSession
    workspace: Workspace
    channel: Channel
    members: dict[str, Member] = field(default_factory=dict)
    standups: dict[str, Standup] = field(default_factory=dict)
    runs: dict[tuple[int, date], StandupRun] = field(default_factory=dict)

    async def member(self, name: str, zone: str | None = "Europe/Berlin") -> Member:
        member = Member(
            workspace_id=self.workspace.id,
            platform_user_id=f"U-{name}",
            display_name=name,
            timezone=zone,
            created_at=NOW,
            updated_at=NOW,
        )
        self.session.add(member)
        await self.session.flush()
        self.members[name] = member
        return member

    async def standup(
        self, name: str, questions: Sequence[str | dict[str, Any]] = QUESTIONS
    ) -> Standup:
        standup = Standup(
            workspace_id=self.workspace.id,
            name=name,
            report_channel_id=self.channel.id,
            questions=[
                q if isinstance(q, dict) else {"text": q, "kind": "text", "blocker": False}
                for q in questions
            ],
            days=[1, 2, 3, 4, 5],
            anchor_date=date(2026, 1, 5),
            time_of_day="09:00",
            team_timezone=None,
            created_at=NOW,
            updated_at=NOW,
        )
        self.session.add(standup)
        await self.session.flush()
        self.standups[name] = standup
        return standup

    async def day(
        self,
        standup: str,
        member: str,
        run_date: date,
        status: PromptStatus,
        answers: dict[int, str] | None = None,
        *,
        closes_at: datetime | None = None,
    ) -> StandupPrompt:
        s = self.standups[standup]
        run = self.runs.get((s.id, run_date))
        if run is None:
            run = StandupRun(
                standup_id=s.id,
                run_date=run_date,
                closes_at=closes_at
                or datetime.combine(run_date, datetime.min.time(), UTC) + timedelta(hours=13),
                created_at=NOW,
            )
            self.session.add(run)
            await self.session.flush()
            self.runs[(s.id, run_date)] = run
        answered = status is PromptStatus.ANSWERED
        prompt = StandupPrompt(
            run_id=run.id,
            member_id=self.members[member].id,
            status=status,
            prompted_at=None
            if status is PromptStatus.AWAY
            else datetime.combine(run_date, datetime.min.time(), UTC) + timedelta(hours=8),
            answered_at=datetime.combine(run_date, datetime.min.time(), UTC)
            + timedelta(hours=9, minutes=15)
            if answered
            else None,
            updated_at=NOW,
        )
        self.session.add(prompt)
        await self.session.flush()
        for index, answer in (answers or {}).items():
            self.session.add(StandupAnswer(prompt_id=prompt.id, question_index=index, text=answer))
        await self.session.flush()
        return prompt


async def world(session: AsyncSession, external_id: str = "T1") -> World:
    workspace = Workspace(platform="console", external_id=external_id, name="Demo", created_at=NOW)
    session.add(workspace)
    await session.flush()
    channel = Channel(workspace_id=workspace.id, external_id="C1", name="team", created_at=NOW)
    session.add(channel)
    await session.flush()
    return World(session, workspace, channel)


def full(prefix: str) -> dict[int, str]:
    return {0: f"{prefix}: did", 1: f"{prefix}: will", 2: "nothing"}


def plain(msg: Message) -> str:
    out = []
    for block in msg.blocks:
        if isinstance(block, Header):
            out.append(block.text)
        elif isinstance(block, Section | Context):
            out.append(block.text.plain())
    return "\n".join(out)


def texts(msg: Message) -> list[Text]:
    return [b.text for b in msg.blocks if isinstance(b, Section | Context)]


def sections(msg: Message) -> list[str]:
    return [b.text.plain() for b in msg.blocks if isinstance(b, Section)]


# --- history -------------------------------------------------------------------------------


async def test_history_newest_first_grouped_by_day_and_standup(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.member("bob", "America/New_York")
        await w.standup("daily")
        await w.standup("retro", ["What went well?"])
        await w.day("daily", "alice", date(2026, 3, 6), PromptStatus.ANSWERED, full("fri"))
        await w.day("daily", "alice", date(2026, 3, 9), PromptStatus.ANSWERED, full("mon"))
        await w.day("retro", "alice", date(2026, 3, 9), PromptStatus.ANSWERED, {0: "pairing"})
        await w.day("daily", "alice", date(2026, 3, 5), PromptStatus.AWAY)
        await w.day("daily", "alice", date(2026, 3, 4), PromptStatus.SKIPPED)
        await w.day("daily", "alice", date(2026, 3, 3), PromptStatus.UNREACHABLE)
        await w.day("daily", "alice", date(2026, 3, 2), PromptStatus.PENDING)  # window closed
        await w.day("daily", "alice", date(2026, 3, 1), PromptStatus.ANSWERED, full("too old"))
        await w.day("daily", "bob", date(2026, 3, 9), PromptStatus.ANSWERED, full("bob"))

        msg = await history(session, w.workspace.id, w.members["alice"], 9, NOW)

    days = sections(msg)
    assert [d.split("\n", 1)[0] for d in days] == [
        "Mon 2026-03-09 · daily",
        "Mon 2026-03-09 · retro",
        "Fri 2026-03-06 · daily",
        "Thu 2026-03-05 · daily",
        "Wed 2026-03-04 · daily",
        "Tue 2026-03-03 · daily",
        "Mon 2026-03-02 · daily",
    ]
    assert days[0] == (
        "Mon 2026-03-09 · daily\n"
        "1. What did you do?\n    mon: did\n"
        "2. What will you do?\n    mon: will\n"
        "3. Anything blocking you?\n    nothing"
    )
    assert days[1] == "Mon 2026-03-09 · retro\n1. What went well?\n    pairing"
    assert days[3].endswith("\nAway (out of office)")
    assert days[4].endswith("\nSkipped")
    assert days[5].endswith("\nCould not be reached (DMs closed)")
    assert days[6].endswith("\nNo answer")
    everything = plain(msg)
    assert "too old" not in everything
    assert "bob" not in everything
    assert "alice, last 9 days, newest first" in everything


async def test_history_for_one_standup_and_empty_results(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.member("dana")
        await w.standup("daily")
        await w.standup("Retro", ["What went well?"])
        await w.day("daily", "alice", date(2026, 3, 9), PromptStatus.ANSWERED, full("mon"))
        await w.day("Retro", "alice", date(2026, 3, 9), PromptStatus.ANSWERED, {0: "pairing"})

        only_retro = await history(session, w.workspace.id, w.members["alice"], 7, NOW, "retro")
        nothing = await history(session, w.workspace.id, w.members["dana"], 7, NOW)
        nothing_in = await history(session, w.workspace.id, w.members["dana"], 1, NOW, "daily")

    assert [s.split("\n", 1)[0] for s in sections(only_retro)] == ["Mon 2026-03-09 · Retro"]
    assert plain(nothing) == "No standup answers from dana in the last 7 days."
    assert plain(nothing_in) == "No standup answers from dana in daily today."


async def test_history_window_is_the_members_local_calendar(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("kiri", "Pacific/Auckland")  # already Wednesday 2026-03-11 there
        await w.member("sam", "America/Los_Angeles")  # still Tuesday 2026-03-10, 05:00
        await w.standup("daily")
        for who in ("kiri", "sam"):
            await w.day("daily", who, date(2026, 3, 11), PromptStatus.ANSWERED, full(f"{who} 11"))
            await w.day("daily", who, date(2026, 3, 10), PromptStatus.ANSWERED, full(f"{who} 10"))
            await w.day("daily", who, date(2026, 3, 9), PromptStatus.ANSWERED, full(f"{who} 9"))

        kiri = await history(session, w.workspace.id, w.members["kiri"], 1, NOW)
        sam = await history(session, w.workspace.id, w.members["sam"], 2, NOW)

    assert [s.split("\n", 1)[0] for s in sections(kiri)] == ["Wed 2026-03-11 · daily"]
    assert [s.split("\n", 1)[0] for s in sections(sam)] == [
        "Tue 2026-03-10 · daily",
        "Mon 2026-03-09 · daily",
    ]


async def test_history_open_and_partial_answers(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.standup("daily")
        later = NOW + timedelta(hours=2)
        await w.day("daily", "alice", TODAY, PromptStatus.PENDING, closes_at=later)
        await w.day(
            "daily",
            "alice",
            date(2026, 3, 9),
            PromptStatus.PENDING,
            {0: "half done"},
        )
        msg = await history(session, w.workspace.id, w.members["alice"], 7, NOW)

    today, monday = sections(msg)
    assert today == "Tue 2026-03-10 · daily\nNot answered yet"
    assert monday == (
        "Mon 2026-03-09 · daily  (answer not finished)\n"
        "1. What did you do?\n    half done\n"
        "2. What will you do?\n    no answer\n"
        "3. Anything blocking you?\n    no answer"
    )


async def test_history_shows_user_text_verbatim_as_plain_tokens(database: Database) -> None:
    hostile = "<!channel> @here *bold* <@U-bob> `code`\nsecond line"
    async with database.transaction() as session:
        w = await world(session)
        await w.member("<@U-evil> @everyone")
        await w.standup("<!here> daily", ["<!channel> what did you do?"])
        await w.day(
            "<!here> daily", "<@U-evil> @everyone", TODAY, PromptStatus.ANSWERED, {0: hostile}
        )
        msg = await history(session, w.workspace.id, w.members["<@U-evil> @everyone"], 7, NOW)

    tokens = [part for t in texts(msg) for part in t.parts]
    assert not any(isinstance(part, UserMention) for part in tokens)
    for needle in ("<!channel> @here *bold*", "<!here> daily", "<@U-evil> @everyone"):
        carriers = [p for p in tokens if needle in getattr(p, "text", "")]
        assert carriers, needle
        assert all(isinstance(p, Plain) for p in carriers), needle
    assert "    <!channel> @here *bold* <@U-bob> `code`\n    second line" in plain(msg)


async def test_history_shows_moods_and_skipped_questions(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.standup("pulse", ["Highlight?", {"text": "How are you?", "kind": "mood"}])
        await w.day("pulse", "alice", TODAY, PromptStatus.ANSWERED, {0: "", 1: "4"})
        msg = await history(session, w.workspace.id, w.members["alice"], 1, NOW)
    assert sections(msg) == [
        "Tue 2026-03-10 · pulse\n1. Highlight?\n    no answer\n2. How are you?\n    4/5 (good)"
    ]
    assert "alice, today" in plain(msg)


@pytest.mark.parametrize("days", [0, -3, 366])
async def test_history_days_out_of_range(database: Database, days: int) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        with pytest.raises(UserError) as caught:
            await history(session, w.workspace.id, w.members["alice"], days, NOW)
    assert caught.value.message == (
        f"The number of days must be a whole number from 1 to 365; got {days}."
    )
    assert caught.value.field == "days"


async def test_unknown_standup_suggests_close_names(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        empty = await world(session, "T2")
        await empty.member("zed")
        with pytest.raises(UserError) as none_yet:
            await history(session, empty.workspace.id, empty.members["zed"], 7, NOW, "daily")
        await w.standup("daily")
        await w.standup("Daily design")
        await w.standup("retro")
        with pytest.raises(UserError) as typo:
            await history(session, w.workspace.id, w.members["alice"], 7, NOW, "dialy")
        with pytest.raises(UserError) as unrelated:
            await stats(session, w.workspace.id, NOW, "xyzzy")
        assert (await resolve_standup(session, w.workspace.id, " RETRO ")).name == "retro"

    assert "There are no standups here yet" in none_yet.value.message
    assert typo.value.message.startswith('Unknown standup "dialy"; try "daily"')
    assert unrelated.value.message == (
        'Unknown standup "xyzzy"; the standups are "Daily design", "daily", "retro".'
    )


# --- stats ---------------------------------------------------------------------------------


async def test_stats_per_member_and_team(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        for name in ("alice", "bob", "carol"):
            await w.member(name)
        await w.standup("daily")
        mon, tue, wed, thu, fri = (date(2026, 3, 2) + timedelta(days=i) for i in range(5))
        A, S, W, P, U = (
            PromptStatus.ANSWERED,
            PromptStatus.SKIPPED,
            PromptStatus.AWAY,
            PromptStatus.PENDING,
            PromptStatus.UNREACHABLE,
        )
        # alice: answered, skipped, answered, away, answered -> 3 of 4, streak 2 (away kept it)
        for day, status in zip((mon, tue, wed, thu, fri), (A, S, A, W, A), strict=True):
            await w.day("daily", "alice", day, status, full("a") if status is A else None)
        # bob: answered every day, then today's prompt still open -> 5 of 5, streak 5
        for day in (mon, tue, wed, thu, fri):
            await w.day("daily", "bob", day, A, full("b"))
        await w.day("daily", "bob", TODAY, P, closes_at=NOW + timedelta(hours=3))
        # carol: unreachable, never answered (closed), answered -> 1 of 3
        for day, status in zip((mon, tue, wed), (U, P, A), strict=True):
            await w.day("daily", "carol", day, status, full("c") if status is A else None)
        # Older than 4 weeks: not counted.
        await w.day("daily", "carol", TODAY - timedelta(days=28), S)

        msg = await stats(session, w.workspace.id, NOW)

    lines = "\n".join(sections(msg)).split("\n")
    assert lines == [
        "Team (6 standup days): 9 of 12 answered (75%) · 1 skipped · 1 away · 1 unreachable",
        "alice: 3 of 4 answered (75%) · 1 skipped · 1 away · streak 2",
        "bob: 5 of 5 answered (100%) · streak 5",
        "carol: 1 of 3 answered (33%) · 1 unreachable · streak 1",
    ]
    assert "Last 4 weeks (2026-02-11 to 2026-03-10)" in plain(msg)


async def test_stats_for_one_standup_and_other_workspaces_stay_out(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.standup("daily")
        await w.standup("retro", ["What went well?"])
        await w.day("daily", "alice", date(2026, 3, 9), PromptStatus.ANSWERED, full("a"))
        await w.day("retro", "alice", date(2026, 3, 9), PromptStatus.SKIPPED)
        other = await world(session, "T2")
        await other.member("olga")
        await other.standup("daily")
        await other.day("daily", "olga", date(2026, 3, 9), PromptStatus.SKIPPED)

        everything = await stats(session, w.workspace.id, NOW)
        retro = await stats(session, w.workspace.id, NOW, "retro")

    assert sections(everything) == [
        "Team (2 standup days): 1 of 2 answered (50%) · 1 skipped",
        "alice: 1 of 2 answered (50%) · 1 skipped · streak 0",
    ]
    assert sections(retro) == [
        "Team (1 standup day): 0 of 1 answered (0%) · 1 skipped",
        "alice: 0 of 1 answered (0%) · 1 skipped · streak 0",
    ]
    assert "Last 4 weeks for retro" in plain(retro)


async def test_stats_without_runs_says_so(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.standup("daily")
        await w.day("daily", "alice", TODAY - timedelta(days=40), PromptStatus.ANSWERED, full("a"))
        msg = await stats(session, w.workspace.id, NOW)
        for_daily = await stats(session, w.workspace.id, NOW, "daily", weeks=1)
    assert plain(msg) == "No standup runs in the last 4 weeks."
    assert plain(for_daily) == "No standup runs in the last week for daily."


async def test_stats_only_away_has_no_percentage(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.member("alice")
        await w.standup("daily")
        await w.day("daily", "alice", date(2026, 3, 9), PromptStatus.AWAY)
        msg = await stats(session, w.workspace.id, NOW)
    assert sections(msg) == [
        "Team (1 standup day): 0 of 0 answered (n/a) · 1 away",
        "alice: 0 of 0 answered (n/a) · 1 away · streak 0",
    ]


async def test_stats_large_team_is_split_into_sections(database: Database) -> None:
    async with database.transaction() as session:
        w = await world(session)
        await w.standup("daily")
        for i in range(150):
            await w.member(f"member-with-a-long-display-name-{i:03d}")
            await w.day(
                "daily",
                f"member-with-a-long-display-name-{i:03d}",
                date(2026, 3, 9),
                PromptStatus.ANSWERED,
            )
        msg = await stats(session, w.workspace.id, NOW)
    member_sections = sections(msg)[1:]
    assert len(member_sections) > 1
    assert all(len(s) <= SECTION_CHARS for s in member_sections)
    lines = "\n".join(member_sections).split("\n")
    assert len(lines) == 150
    assert lines[0] == "member-with-a-long-display-name-000: 1 of 1 answered (100%) · streak 1"


@pytest.mark.parametrize("weeks", [0, 53])
async def test_stats_weeks_out_of_range(database: Database, weeks: int) -> None:
    async with database.transaction() as session:
        w = await world(session)
        with pytest.raises(UserError) as caught:
            await stats(session, w.workspace.id, NOW, weeks=weeks)
    assert "from 1 to 52" in caught.value.message
