"""``/standup history`` and ``/standup stats``: past answers and participation.

Both read only; the command handlers (``commands.py``) resolve who is asking about whom and call
:func:`history` and :func:`stats`, which return the message to show privately.

* History lists one member's standup days over the last ``days`` days of *their* local calendar
  (run dates are the participants' local dates), newest first, one section per standup day with
  each question and its answer. Days they were away, skipped, could not be reached or did not
  answer are shown as such.
* Stats count participation per member and for the team over the last ``weeks`` weeks with SQL
  aggregates: answered out of expected, where expected leaves out days the member was away and
  prompts whose answer window is still open (not missed yet). Skipped days count as expected and
  not answered, and so do unreachable ones (the platform refused the prompt DM: closed DMs, an
  inactive account): the member was expected and is shown as unreachable, and the footer says
  how those count whenever there are any. The streak is the number of answered prompts since
  the member's last miss in the period (away days do not break it).

User text (answers, questions, standup and member names) is always a :class:`Plain` token, so it
is shown verbatim and can never ping anyone.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Bold, Context, Header, Italic, Message, Section, Text, message, text
from bot.errors import UserError
from bot.features.standups.report import MOODS
from storage.models import (
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
)

MAX_DAYS = 365
MAX_WEEKS = 52
# Keep each section well under the stricter platform limit (Discord: 2,000 chars a message).
SECTION_CHARS = 1900

_STATUS_NOTES = {
    PromptStatus.AWAY: "Away (out of office)",
    PromptStatus.SKIPPED: "Skipped",
    PromptStatus.UNREACHABLE: "Could not be reached (DMs closed)",
}


# --- lookups -------------------------------------------------------------------------------


async def resolve_standup(session: AsyncSession, workspace_id: int, name: str) -> Standup:
    """The workspace's standup called ``name`` (case-insensitive when unambiguous), or a
    :class:`UserError` that names the close matches."""
    wanted = name.strip()
    standups = list(
        await session.scalars(select(Standup).where(Standup.workspace_id == workspace_id))
    )
    for standup in standups:
        if standup.name == wanted:
            return standup
    folded = [s for s in standups if s.name.casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    names = sorted(s.name for s in standups)
    if not names:
        raise UserError("There are no standups here yet; create one with `/standup setup`.")
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    if not close:
        by_folded = {n.casefold(): n for n in names}
        close = [
            by_folded[c]
            for c in difflib.get_close_matches(wanted.casefold(), list(by_folded), n=3, cutoff=0.5)
        ]
    if close:
        hint = "try " + " or ".join(f'"{c}"' for c in close)
    else:
        hint = "the standups are " + ", ".join(f'"{n}"' for n in names[:10])
        if len(names) > 10:
            hint += f" and {len(names) - 10} more (`/standup list`)"
    raise UserError(f'Unknown standup "{wanted}"; {hint}.', field="standup")


def _check_range(value: int, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(
            f"The number of {what} must be a whole number from {low} to {high}; got {value}.",
            field=what,
        )


def _zone(name: str | None) -> ZoneInfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def _question(questions: list[dict[str, object]], index: int) -> str:
    if 0 <= index < len(questions):
        return str(questions[index].get("text") or f"Question {index + 1}")
    return f"Question {index + 1} (since removed)"


def _indent(answer: str) -> str:
    return "\n".join("    " + line for line in answer.splitlines() or [""])


# --- history -------------------------------------------------------------------------------


@dataclass
class _Day:
    run_date: date
    standup_id: int
    standup_name: str
    status: PromptStatus
    open: bool
    answers: dict[int, str]


async def history(
    session: AsyncSession,
    workspace_id: int,
    member: Member,
    days: int,
    now: datetime,
    standup_name: str | None = None,
) -> Message:
    """``member``'s standup days over the last ``days`` days of their local calendar."""
    _check_range(days, 1, MAX_DAYS, "days")
    standup = await resolve_standup(session, workspace_id, standup_name) if standup_name else None
    today = now.astimezone(_zone(member.timezone)).date()
    since = today - timedelta(days=days - 1)

    stmt = (
        select(
            StandupPrompt.id,
            StandupPrompt.status,
            StandupRun.run_date,
            StandupRun.closes_at,
            Standup.id,
            Standup.name,
            StandupAnswer.question_index,
            StandupAnswer.text,
        )
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .join(Standup, Standup.id == StandupRun.standup_id)
        .outerjoin(StandupAnswer, StandupAnswer.prompt_id == StandupPrompt.id)
        .where(
            StandupPrompt.member_id == member.id,
            Standup.workspace_id == workspace_id,
            StandupRun.run_date >= since,
            StandupRun.run_date <= today,
        )
        .order_by(
            StandupRun.run_date.desc(),
            Standup.name,
            StandupPrompt.id,
            StandupAnswer.question_index,
        )
    )
    if standup is not None:
        stmt = stmt.where(Standup.id == standup.id)

    found: dict[int, _Day] = {}
    for prompt_id, status, run_date, closes_at, sid, sname, index, answer in await session.execute(
        stmt
    ):
        day = found.get(prompt_id)
        if day is None:
            day = found[prompt_id] = _Day(
                run_date, sid, sname, PromptStatus(status), closes_at > now, {}
            )
        if index is not None:
            day.answers[index] = answer

    who = member.display_name or member.platform_user_id
    scope = text(" in ", standup.name) if standup is not None else text()
    period = "today" if days == 1 else f"in the last {days} days"
    if not found:
        return message(
            text("No standup answers from ", who, scope, f" {period}."),
            summary="No standup history",
        )

    questions = await _questions(session, {d.standup_id for d in found.values()})
    blocks: list[Header | Context | Section] = [
        Header("Standup history"),
        Context(
            text(who, scope, ", ", "today" if days == 1 else f"last {days} days, newest first")
        ),
    ]
    for day in found.values():
        blocks.append(Section(_day_text(day, questions[day.standup_id])))
    return message(*blocks, summary="Standup history")


async def _questions(session: AsyncSession, ids: set[int]) -> dict[int, list[dict[str, object]]]:
    rows = await session.execute(select(Standup.id, Standup.questions).where(Standup.id.in_(ids)))
    return {sid: list(qs or []) for sid, qs in rows}


def _day_text(day: _Day, questions: list[dict[str, object]]) -> Text:
    out = text(Bold(f"{day.run_date:%a %Y-%m-%d}"), " · ", day.standup_name)
    note = _STATUS_NOTES.get(day.status)
    if not day.answers:
        if note is None:
            note = "Not answered yet" if day.open else "No answer"
        return out + text("\n", Italic(note))
    if note is None and day.status is PromptStatus.PENDING:
        note = "Answer in progress" if day.open else "Answer not finished"
    if note is not None:
        out = out + text("  ", Italic(f"({note.lower()})"))
    indexes = sorted(set(day.answers) | set(range(len(questions))))
    for index in indexes:
        out = out + text("\n", Bold(f"{index + 1}. "), _question(questions, index), "\n")
        out = out + _answer(questions, index, day.answers.get(index))
    return out


def _answer(questions: list[dict[str, object]], index: int, raw: str | None) -> Text:
    if not raw:
        return text("    ", Italic("no answer"))
    kind = questions[index].get("kind") if 0 <= index < len(questions) else None
    if kind == "mood" and raw.isdigit() and 1 <= int(raw) <= len(MOODS):
        raw = f"{raw}/5 ({MOODS[int(raw) - 1]})"
    return text(_indent(raw))


# --- stats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Participation:
    """Counts over a period; ``expected`` excludes away days and still-open prompts."""

    answered: int
    expected: int
    skipped: int
    away: int
    unreachable: int

    @property
    def percent(self) -> str:
        if self.expected == 0:
            return "n/a"
        return f"{round(100 * self.answered / self.expected)}%"


def _n(value: Any) -> int:
    return int(value) if value is not None else 0


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def stats(
    session: AsyncSession,
    workspace_id: int,
    now: datetime,
    standup_name: str | None = None,
    weeks: int = 4,
    *,
    standup: Standup | None = None,
) -> Message:
    """Participation per member and for the team over the last ``weeks`` weeks, of one standup
    when ``standup`` (or ``standup_name``, looked up here) is given."""
    _check_range(weeks, 1, MAX_WEEKS, "weeks")
    if standup is None and standup_name:
        standup = await resolve_standup(session, workspace_id, standup_name)
    today = now.astimezone(UTC).date()
    since = today - timedelta(days=7 * weeks - 1)
    # Run dates are local dates: a member east of UTC may already be on tomorrow's run.
    until = today + timedelta(days=1)

    status = StandupPrompt.status
    still_open = and_(status == PromptStatus.PENDING, StandupRun.closes_at > now)
    counted = and_(status != PromptStatus.AWAY, not_(still_open))
    missed = and_(counted, status != PromptStatus.ANSWERED)

    def scoped(stmt: Select[Any]) -> Select[Any]:
        stmt = (
            stmt.join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .where(
                Standup.workspace_id == workspace_id,
                StandupRun.run_date >= since,
                StandupRun.run_date <= until,
            )
        )
        return stmt.where(Standup.id == standup.id) if standup is not None else stmt

    counts = (
        _count(status == PromptStatus.ANSWERED).label("answered"),
        _count(counted).label("expected"),
        _count(status == PromptStatus.SKIPPED).label("skipped"),
        _count(status == PromptStatus.AWAY).label("away"),
        _count(status == PromptStatus.UNREACHABLE).label("unreachable"),
    )
    team_row = (
        await session.execute(
            scoped(select(func.count(distinct(StandupRun.id)), *counts).select_from(StandupPrompt))
        )
    ).one()
    runs = _n(team_row[0])
    scope = text(" for ", standup.name) if standup is not None else text()
    period = "week" if weeks == 1 else f"{weeks} weeks"
    if runs == 0:
        return message(
            text(f"No standup runs in the last {period}", scope, "."),
            summary="No standup stats",
        )
    team = Participation(*(_n(v) for v in team_row[1:]))

    last_miss = (
        scoped(
            select(
                StandupPrompt.member_id.label("member_id"),
                func.max(StandupRun.run_date).label("last_miss"),
            ).where(missed)
        )
        .group_by(StandupPrompt.member_id)
        .subquery()
    )
    streak = _count(
        and_(
            status == PromptStatus.ANSWERED,
            or_(last_miss.c.last_miss.is_(None), StandupRun.run_date > last_miss.c.last_miss),
        )
    ).label("streak")
    per_member = (
        scoped(
            select(Member.display_name, Member.platform_user_id, *counts, streak)
            .select_from(StandupPrompt)
            .join(Member, Member.id == StandupPrompt.member_id)
            .outerjoin(last_miss, last_miss.c.member_id == StandupPrompt.member_id)
        )
        .group_by(Member.id, Member.display_name, Member.platform_user_id)
        .order_by(func.lower(Member.display_name), Member.platform_user_id)
    )
    lines: list[Text] = []
    for name, user_id, *values in await session.execute(per_member):
        member = Participation(*(_n(v) for v in values[:5]))
        lines.append(text(name or user_id, ": ", _summary(member), f" · streak {_n(values[5])}"))

    days = "standup day" if runs == 1 else "standup days"
    blocks: list[Header | Context | Section] = [
        Header("Standup participation"),
        Context(text(f"Last {period}", scope, f" ({since:%Y-%m-%d} to {today:%Y-%m-%d})")),
        Section(text(Bold("Team"), f" ({runs} {days}): ", _summary(team))),
    ]
    blocks.extend(Section(chunk) for chunk in _chunks(lines))
    footer = (
        "Answered of expected; expected leaves out days away and answers still open. "
        "Streak: answers in a row since the last miss in this period."
    )
    if team.unreachable:
        footer += (
            " Unreachable: syncup could not DM them (closed DMs or an inactive account); such "
            "days count as expected and not answered."
        )
    blocks.append(Context(text(footer)))
    return message(*blocks, summary="Standup participation")


def _summary(p: Participation) -> str:
    parts = [f"{p.answered} of {p.expected} answered ({p.percent})"]
    if p.skipped:
        parts.append(f"{p.skipped} skipped")
    if p.away:
        parts.append(f"{p.away} away")
    if p.unreachable:
        parts.append(f"{p.unreachable} unreachable")
    return " · ".join(parts)


def _chunks(lines: list[Text]) -> list[Text]:
    """Lines joined into texts of at most :data:`SECTION_CHARS` characters each."""
    chunks: list[Text] = []
    current = text()
    for line in lines:
        if len(current) and len(current) + 1 + len(line) > SECTION_CHARS:
            chunks.append(current)
            current = text()
        current = current + text("\n") + line if len(current) else line
    if len(current):
        chunks.append(current)
    return chunks
