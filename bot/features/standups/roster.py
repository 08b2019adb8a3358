"""Who is in a run, for its report: the prompted (with their status and answers), the away and
those whose local prompt time has not come yet.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Absence,
    Blocker,
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)

# Rows a roster is read in at a time (ids per IN list, rows per streamed partition).
PARTITION = 500

# Roster statuses beyond PromptStatus: a participant whose local prompt time has not come yet.
WAITING = "waiting"


@dataclass(frozen=True, slots=True)
class Person:
    """The few columns of a member a report needs (plain rows: a roster of thousands is loaded
    on every refresh, and ORM objects for each would cost most of it)."""

    id: int
    display_name: str
    platform_user_id: str


@dataclass(slots=True)
class PromptState:
    """The columns of a prompt a report reads, and the two it writes back (see :func:`refresh`)."""

    id: int
    answered_at: datetime | None
    report_outbox_id: int | None
    report_version: int


@dataclass
class Entry:
    """One person in a run's report."""

    member: Person
    status: str  # a PromptStatus value, or WAITING
    prompt: PromptState | None = None
    answers: dict[int, str] = field(default_factory=dict)
    # The tracked blocker an answer opened or named again, by question index (its number is
    # shown next to the answer: see ``report_messages.answer_text``).
    blockers: dict[int, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.member.display_name or self.member.platform_user_id


@dataclass
class Roster:
    entries: list[Entry]

    def having(self, *statuses: str) -> list[Entry]:
        return [e for e in self.entries if e.status in statuses]

    @property
    def answered(self) -> list[Entry]:
        """Those who answered, in the order they did."""
        done = [e for e in self.having(PromptStatus.ANSWERED) if e.prompt is not None]
        return sorted(done, key=lambda e: (e.prompt.answered_at, e.prompt.id))  # type: ignore[union-attr]

    @property
    def expected(self) -> list[Entry]:
        """Everyone the report counts: all but those away (the unreachable count, as in the
        stats: they were expected and could not be asked)."""
        return [e for e in self.entries if e.status != PromptStatus.AWAY]

    @property
    def missing(self) -> list[Entry]:
        """Prompted and not answered (nor skipped): who a nudge names. Not the unreachable:
        they never got the prompt, and are listed apart."""
        return self.having(PromptStatus.PENDING)

    @property
    def unreachable(self) -> list[Entry]:
        """Those whose prompt the platform refused (closed DMs, an inactive account)."""
        return self.having(PromptStatus.UNREACHABLE)


async def load_roster(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    *,
    answers_of: Collection[int] | None = None,
) -> Roster:
    """Everyone in the run: its prompts, plus participants not prompted yet (away if an
    absence covers the run's date, else waiting for their local time).

    Answers are loaded for every answered prompt, or with ``answers_of`` only for those prompt
    ids (a refresh renders the replies of the prompts that changed, not all of them)."""
    entries: dict[int, Entry] = {}
    # Streamed in partitions: each is an await, so a roster of thousands never holds the event
    # loop for long (answers are handled in between).
    rows = await session.stream(
        select(
            Member.id,
            Member.display_name,
            Member.platform_user_id,
            StandupPrompt.id,
            StandupPrompt.status,
            StandupPrompt.answered_at,
            StandupPrompt.report_outbox_id,
            StandupPrompt.report_version,
        )
        .join(Member, Member.id == StandupPrompt.member_id)
        .where(StandupPrompt.run_id == run.id)
    )
    by_prompt: dict[int, Entry] = {}
    async for partition in rows.partitions(PARTITION):
        for (
            member_id,
            name,
            user_id,
            prompt_id,
            status,
            answered_at,
            outbox_id,
            version,
        ) in partition:
            entry = Entry(
                Person(member_id, name, user_id),
                PromptStatus(status).value,
                PromptState(prompt_id, answered_at, outbox_id, version),
            )
            entries[member_id] = by_prompt[prompt_id] = entry
    wanted = [
        pid
        for pid, e in by_prompt.items()
        if e.status == PromptStatus.ANSWERED and (answers_of is None or pid in answers_of)
    ]
    for start in range(0, len(wanted), PARTITION):
        answers = await session.execute(
            select(
                StandupAnswer.prompt_id,
                StandupAnswer.question_index,
                StandupAnswer.text,
                Blocker.id,
            )
            .outerjoin(Blocker, Blocker.standup_answer_id == StandupAnswer.id)
            .where(StandupAnswer.prompt_id.in_(wanted[start : start + PARTITION]))
        )
        for prompt_id, index, answer, blocker_id in answers:
            by_prompt[prompt_id].answers[index] = answer
            if blocker_id is not None:
                by_prompt[prompt_id].blockers[index] = blocker_id
    if run.occasion:
        # A run by hand asked everyone at once: someone without a prompt joined after it.
        return Roster(sorted(entries.values(), key=lambda e: (e.name.lower(), e.member.id)))
    # Participants without a prompt in this run (only those: the prompted ones are loaded).
    prompted = select(StandupPrompt.id).where(
        StandupPrompt.run_id == run.id, StandupPrompt.member_id == StandupParticipant.member_id
    )
    waiting = [
        Person(member_id, name, user_id)
        for member_id, name, user_id in await session.execute(
            select(Member.id, Member.display_name, Member.platform_user_id)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            .where(StandupParticipant.standup_id == standup.id, ~prompted.exists())
        )
        if member_id not in entries
    ]
    if waiting:
        away = set(
            await session.scalars(
                select(Absence.member_id)
                .join(StandupParticipant, StandupParticipant.member_id == Absence.member_id)
                .where(
                    StandupParticipant.standup_id == standup.id,
                    or_(Absence.standup_id.is_(None), Absence.standup_id == standup.id),
                    Absence.start_date <= run.run_date,
                    Absence.end_date >= run.run_date,
                )
            )
        )
        for person in waiting:
            status = PromptStatus.AWAY.value if person.id in away else WAITING
            entries[person.id] = Entry(person, status)
    ordered = sorted(entries.values(), key=lambda e: (e.name.lower(), e.member.id))
    return Roster(ordered)


async def heard_from(session: AsyncSession, standup: Standup, run: StandupRun) -> tuple[int, int]:
    """The report's "Heard from N of M" as two counts, without loading the roster (a reminder
    says it to each member it goes to)."""
    answered = await session.scalar(
        select(func.count()).where(
            StandupPrompt.run_id == run.id, StandupPrompt.status == PromptStatus.ANSWERED
        )
    )
    prompted = await session.scalar(
        select(func.count()).where(
            StandupPrompt.run_id == run.id, StandupPrompt.status != PromptStatus.AWAY
        )
    )
    if run.occasion:  # a run by hand: only those it asked
        return int(answered or 0), int(prompted or 0)
    has_prompt = select(StandupPrompt.id).where(
        StandupPrompt.run_id == run.id, StandupPrompt.member_id == StandupParticipant.member_id
    )
    is_away = select(Absence.id).where(
        Absence.member_id == StandupParticipant.member_id,
        or_(Absence.standup_id.is_(None), Absence.standup_id == standup.id),
        Absence.start_date <= run.run_date,
        Absence.end_date >= run.run_date,
    )
    waiting = await session.scalar(
        select(func.count()).where(
            StandupParticipant.standup_id == standup.id,
            ~has_prompt.exists(),
            ~is_away.exists(),
        )
    )
    return int(answered or 0), int(prompted or 0) + int(waiting or 0)
