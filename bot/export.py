"""Operator exports (``syncup export ...``), streamed from the database to CSV or JSON.

:func:`standup_rows` yields one :class:`StandupExportRow` per stored answer, plus one row with an
empty question and answer for each prompt that has no answer (away, skipped, unreachable, still
pending). Rows come from a server-side cursor in batches (``yield_per``), so an export of years of
standups never holds more than a batch in memory; the writers emit each row as it arrives.

:func:`poll_rows` yields one :class:`PollExportRow` per poll and option (per value of a scale or
eNPS poll, per answer of an open-answer poll), reading polls in batches of ``POLL_BATCH``. It
keeps invariant 6: anonymous polls have no voter data at all (the ``voters`` column is always
empty for them), and their counts, scores and open answers are exported only once the poll has
closed with at least its threshold of answers (counts of an open one, exported twice, would tell
what the answers in between were). Pulse questions are not polls of their own here.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) get a leading apostrophe; JSON keeps every value verbatim.

:func:`blocker_rows` yields one :class:`BlockerExportRow` per blocker opened in the period, with
its area, what it waits on, its status and who acknowledged and resolved it when.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    Blocker,
    Channel,
    Member,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
    Workspace,
)
from storage.polls import Poll, PollBallot, PollKind, PollParticipant, more_answers_needed
from storage.raci import RaciArea

ExportFormat = Literal["csv", "json"]
BATCH = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class StandupExportRow:
    workspace: str
    standup: str
    run_date: str  # ISO date, the participants' local date
    member: str  # display name
    member_platform_id: str
    question_index: int | None  # 0-based; None for a prompt without answers
    question: str
    answer: str
    answered_at: str  # UTC ISO 8601, "" when not answered
    status: str  # pending | answered | skipped | away | unreachable


FIELDS = tuple(f.name for f in dataclasses.fields(StandupExportRow))


async def standup_rows(
    session: AsyncSession, since: date, until: date | None = None
) -> AsyncIterator[StandupExportRow]:
    """Every prompt and answer of standup runs dated ``since`` .. ``until`` (inclusive), ordered
    by workspace, standup, date, member and question. ``session`` must be in a transaction."""
    questions = await _questions(session)
    stmt = (
        select(
            Workspace.name,
            Workspace.external_id,
            Standup.id,
            Standup.name,
            StandupRun.run_date,
            Member.display_name,
            Member.platform_user_id,
            StandupAnswer.question_index,
            StandupAnswer.text,
            StandupPrompt.answered_at,
            StandupPrompt.status,
        )
        .select_from(StandupPrompt)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .join(Standup, Standup.id == StandupRun.standup_id)
        .join(Workspace, Workspace.id == Standup.workspace_id)
        .join(Member, Member.id == StandupPrompt.member_id)
        .outerjoin(StandupAnswer, StandupAnswer.prompt_id == StandupPrompt.id)
        .where(StandupRun.run_date >= since)
        .order_by(
            Workspace.id,
            Standup.name,
            StandupRun.run_date,
            Member.display_name,
            Member.id,
            StandupAnswer.question_index,
        )
        .execution_options(yield_per=BATCH)
    )
    if until is not None:
        stmt = stmt.where(StandupRun.run_date <= until)
    result = await session.stream(stmt)
    async for row in result:
        (ws_name, ws_id, sid, sname, run_date, name, user_id, index, answer, at, status) = row
        yield StandupExportRow(
            workspace=ws_name or ws_id,
            standup=sname,
            run_date=run_date.isoformat(),
            member=name or user_id,
            member_platform_id=user_id,
            question_index=index,
            question=_question(questions.get(sid, []), index),
            answer=answer if answer is not None else "",
            answered_at=at.isoformat(timespec="seconds") if at is not None else "",
            status=str(getattr(status, "value", status)),
        )


async def _questions(session: AsyncSession) -> dict[int, list[str]]:
    """Question texts by standup id (standups are few; answers are many)."""
    rows = await session.execute(select(Standup.id, Standup.questions))
    return {sid: [str(q.get("text", "")) for q in (qs or [])] for sid, qs in rows}


def _question(questions: list[str], index: int | None) -> str:
    if index is None:
        return ""
    if 0 <= index < len(questions):
        return questions[index]
    return f"Question {index + 1} (since removed)"


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def write_csv(rows: AsyncIterator[Any], out: TextIO, fields: tuple[str, ...] = FIELDS) -> int:
    """Write a header and the rows (dataclasses with ``fields``) as CSV; returns the number of
    rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    count = 0
    async for row in rows:
        writer.writerow([_cell("" if v is None else v) for v in dataclasses.astuple(row)])
        count += 1
    return count


async def write_json(rows: AsyncIterator[Any], out: TextIO) -> int:
    """Write the rows as a JSON array of objects, one per line; returns the number of rows."""
    count = 0
    out.write("[")
    async for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(dataclasses.asdict(row), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


async def write_rows(
    rows: AsyncIterator[Any], out: TextIO, fmt: ExportFormat, fields: tuple[str, ...]
) -> int:
    """Write the rows in ``fmt``; returns the number of rows."""
    if fmt == "json":
        return await write_json(rows, out)
    return await write_csv(rows, out, fields)


async def export_standups(
    session: AsyncSession,
    out: TextIO,
    since: date,
    until: date | None = None,
    fmt: ExportFormat = "csv",
) -> int:
    """Stream the standup export to ``out``; returns the number of rows written."""
    return await write_rows(standup_rows(session, since, until), out, fmt, FIELDS)


# -- polls ------------------------------------------------------------------------------------

POLL_BATCH = 200
SCALE_VALUES = tuple(range(1, 6))
ENPS_VALUES = tuple(range(0, 11))


@dataclass(frozen=True)
class PollExportRow:
    workspace: str
    poll_id: int
    channel: str
    question: str
    kind: str  # single | multiple | scale | enps | text
    anonymous: bool
    results: str  # live | closed | creator: who sees the results, when
    threshold: int
    opens_at: str  # UTC ISO 8601
    closes_at: str  # the deadline, "" for none
    closed_at: str  # "" while open
    status: str  # open | closed | held (closed; counts held back, see docs/polls.md)
    answered: int  # members who answered
    eligible: int  # members who may answer
    option_index: int | None  # 0-based option; the value of a scale or eNPS; None for text
    option: str  # the option's text, the value, or an open answer
    count: int | None  # None where counts are withheld (anonymous: open or under threshold)
    percent: int | None  # of those who answered
    score: str  # scale: the mean; eNPS: the score; else ""
    voters: str  # named polls only: "; "-separated names; always "" for anonymous polls


POLL_FIELDS = tuple(f.name for f in dataclasses.fields(PollExportRow))


async def poll_rows(
    session: AsyncSession, since: date | None = None, until: date | None = None
) -> AsyncIterator[PollExportRow]:
    """Every poll opened ``since`` .. ``until`` (UTC dates, inclusive), by workspace and poll,
    one row per option; see the module docstring for what anonymous polls leave out."""
    workspaces = {
        wid: name or external
        for wid, name, external in await session.execute(
            select(Workspace.id, Workspace.name, Workspace.external_id)
        )
    }
    last = 0
    while True:
        query = (
            select(Poll, Channel.name)
            .outerjoin(Channel, Channel.id == Poll.channel_id)
            .where(Poll.id > last, Poll.round_id.is_(None))
            .order_by(Poll.id)
            .limit(POLL_BATCH)
        )
        if since is not None:
            query = query.where(Poll.opens_at >= datetime.combine(since, time(0), UTC))
        if until is not None:
            end = datetime.combine(until + timedelta(days=1), time(0), UTC)
            query = query.where(Poll.opens_at < end)
        batch = (await session.execute(query)).all()
        if not batch:
            return
        last = batch[-1][0].id
        polls = [poll for poll, _ in batch]
        data = await _poll_batch(session, polls)
        for poll, channel in sorted(batch, key=lambda r: (r[0].workspace_id, r[0].id)):
            for row in _rows_of(poll, channel or "", workspaces.get(poll.workspace_id, ""), data):
                yield row


@dataclass
class _Batch:
    counts: dict[int, dict[int, int]] = dataclasses.field(default_factory=dict)
    participation: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    voters: dict[int, dict[int, list[str]]] = dataclasses.field(default_factory=dict)
    answers: dict[int, list[tuple[str, str]]] = dataclasses.field(default_factory=dict)


def _shown(poll: Poll, answered: int) -> bool:
    """Whether counts of ``poll`` may leave the database (invariant 6 for anonymous polls):
    closed, enough answers, and far enough from a result shown at an earlier close."""
    if not poll.anonymous:
        return True
    return (
        poll.closed_at is not None
        and answered >= poll.threshold
        and not more_answers_needed(poll, answered)
    )


def _status(poll: Poll, answered: int) -> str:
    if poll.closed_at is None:
        return "open"
    return "held" if more_answers_needed(poll, answered) else "closed"


async def _poll_batch(session: AsyncSession, polls: list[Poll]) -> _Batch:
    out = _Batch()
    ids = [p.id for p in polls]
    for poll_id, eligible, answered in await session.execute(
        select(
            PollParticipant.poll_id,
            func.count(),
            func.count().filter(PollParticipant.voted.is_(True)),
        )
        .where(PollParticipant.poll_id.in_(ids))
        .group_by(PollParticipant.poll_id)
    ):
        out.participation[poll_id] = (int(answered), int(eligible))
    shown = [p.id for p in polls if _shown(p, out.participation.get(p.id, (0, 0))[0])]
    if not shown:
        return out
    for poll_id, choice, count in await session.execute(
        select(PollBallot.poll_id, PollBallot.choice, func.count())
        .where(PollBallot.poll_id.in_(shown))
        .group_by(PollBallot.poll_id, PollBallot.choice)
    ):
        out.counts.setdefault(poll_id, {})[choice] = int(count)
    named = [p.id for p in polls if p.id in set(shown) and not p.anonymous]
    if named:
        for poll_id, choice, name, user_id, answer in await session.execute(
            select(
                PollBallot.poll_id,
                PollBallot.choice,
                Member.display_name,
                Member.platform_user_id,
                PollBallot.text,
            )
            .join(Member, Member.id == PollBallot.member_id)
            .where(PollBallot.poll_id.in_(named))
            .order_by(PollBallot.poll_id, PollBallot.choice, Member.display_name, Member.id)
        ):
            who = name or user_id
            out.voters.setdefault(poll_id, {}).setdefault(choice, []).append(who)
            if answer:
                out.answers.setdefault(poll_id, []).append((answer, who))
    texts = [p.id for p in polls if p.id in set(shown) and p.anonymous and p.kind == "text"]
    if texts:
        for poll_id, answer in await session.execute(
            select(PollBallot.poll_id, PollBallot.text)
            .where(PollBallot.poll_id.in_(texts), PollBallot.text.is_not(None))
            .order_by(PollBallot.poll_id, PollBallot.text)
        ):
            out.answers.setdefault(poll_id, []).append((answer, ""))
    return out


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value is not None else ""


def _rows_of(poll: Poll, channel: str, workspace: str, data: _Batch) -> list[PollExportRow]:
    answered, eligible = data.participation.get(poll.id, (0, 0))
    shown = _shown(poll, answered)
    counts = data.counts.get(poll.id, {})
    voters = data.voters.get(poll.id, {})
    kind = PollKind(poll.kind)
    score = ""
    if shown and kind is PollKind.SCALE and sum(counts.values()):
        total = sum(counts.values())
        score = f"{sum(v * c for v, c in counts.items()) / total:.2f}"
    elif shown and kind is PollKind.ENPS and sum(counts.values()):
        total = sum(counts.values())
        promoters = sum(c for v, c in counts.items() if v >= 9)
        detractors = sum(c for v, c in counts.items() if v <= 6)
        score = f"{round(100 * (promoters - detractors) / total):+d}"

    def row(index: int | None, option: str, count: int | None, names: list[str]) -> PollExportRow:
        return PollExportRow(
            workspace=workspace,
            poll_id=poll.id,
            channel=channel,
            question=poll.question,
            kind=kind.value,
            anonymous=poll.anonymous,
            results=poll.results,
            threshold=poll.threshold,
            opens_at=_iso(poll.opens_at),
            closes_at=_iso(poll.closes_at),
            closed_at=_iso(poll.closed_at),
            status=_status(poll, answered),
            answered=answered,
            eligible=eligible,
            option_index=index,
            option=option,
            count=count if shown else None,
            percent=(round(100 * count / answered) if answered else 0)
            if shown and count is not None
            else None,
            score=score,
            voters="" if poll.anonymous else "; ".join(names),
        )

    if kind is PollKind.TEXT:
        answers = data.answers.get(poll.id, []) if shown else []
        if not answers:
            return [row(None, "", 0 if shown else None, [])]
        return [row(None, answer, 1, [who] if who else []) for answer, who in answers]
    if kind is PollKind.SCALE:
        options = [(v, str(v)) for v in SCALE_VALUES]
    elif kind is PollKind.ENPS:
        options = [(v, str(v)) for v in ENPS_VALUES]
    else:
        options = list(enumerate(poll.options))
    return [row(i, label, counts.get(i, 0), voters.get(i, [])) for i, label in options]


async def export_polls(
    session: AsyncSession,
    out: TextIO,
    since: date | None = None,
    until: date | None = None,
    fmt: ExportFormat = "csv",
) -> int:
    """Stream the poll export to ``out``; returns the number of rows written."""
    return await write_rows(poll_rows(session, since, until), out, fmt, POLL_FIELDS)


# -- blockers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockerExportRow:
    workspace: str
    blocker_id: int
    reporter: str
    reporter_platform_id: str
    text: str
    area: str
    waiting_on: str  # a member's display name or an area's name; "" for nothing
    waiting_on_kind: str  # member | area | ""
    severity: str
    status: str  # open | acknowledged | resolved | cancelled
    source: str  # standup | command | message
    source_link: str
    created_at: str  # UTC ISO 8601
    acknowledged_at: str
    acknowledged_by: str
    resolved_at: str  # resolved or cancelled at
    resolved_by: str
    snoozed_until: str
    last_reported_at: str
    escalation_level: int


BLOCKER_FIELDS = tuple(f.name for f in dataclasses.fields(BlockerExportRow))


async def blocker_rows(
    session: AsyncSession, since: date | None = None, until: date | None = None
) -> AsyncIterator[BlockerExportRow]:
    """Blockers opened on ``since`` .. ``until`` (UTC days, inclusive), by workspace and id,
    streamed in batches."""
    reporter, waiter, acker, resolver = (aliased(Member) for _ in range(4))
    area, waited_area = aliased(RaciArea), aliased(RaciArea)
    stmt = (
        select(
            Workspace.name,
            Workspace.external_id,
            Blocker,
            reporter.display_name,
            reporter.platform_user_id,
            area.name,
            waiter.display_name,
            waited_area.name,
            acker.display_name,
            resolver.display_name,
        )
        .join(Workspace, Workspace.id == Blocker.workspace_id)
        .join(reporter, reporter.id == Blocker.member_id)
        .outerjoin(area, area.id == Blocker.area_id)
        .outerjoin(waiter, waiter.id == Blocker.waiting_on_member_id)
        .outerjoin(waited_area, waited_area.id == Blocker.waiting_on_area_id)
        .outerjoin(acker, acker.id == Blocker.acknowledged_by_id)
        .outerjoin(resolver, resolver.id == Blocker.resolved_by_id)
        .order_by(Workspace.id, Blocker.id)
        .execution_options(yield_per=BATCH)
    )
    if since is not None:
        stmt = stmt.where(Blocker.created_at >= datetime.combine(since, time(0), UTC))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), time(0), UTC)
        stmt = stmt.where(Blocker.created_at < end)
    result = await session.stream(stmt)
    async for row in result:
        (ws_name, ws_id, b, rep, rep_id, area_name, waiter_name, waited, acked, resolved) = row
        kind = "member" if b.waiting_on_member_id else "area" if b.waiting_on_area_id else ""
        yield BlockerExportRow(
            workspace=ws_name or ws_id,
            blocker_id=b.id,
            reporter=rep or rep_id,
            reporter_platform_id=rep_id,
            text=b.text,
            area=area_name or "",
            waiting_on=(waiter_name if kind == "member" else waited) or "",
            waiting_on_kind=kind,
            severity=str(getattr(b.severity, "value", b.severity)),
            status=str(getattr(b.status, "value", b.status)),
            source=b.source,
            source_link=b.source_link or "",
            created_at=_iso(b.created_at),
            acknowledged_at=_iso(b.acknowledged_at),
            acknowledged_by=acked or "",
            resolved_at=_iso(b.resolved_at),
            resolved_by=resolved or "",
            snoozed_until=_iso(b.snoozed_until),
            last_reported_at=_iso(b.last_reported_at),
            escalation_level=b.escalation_level,
        )


async def export_blockers(
    session: AsyncSession,
    out: TextIO,
    since: date | None = None,
    until: date | None = None,
    fmt: ExportFormat = "csv",
) -> int:
    """Stream the blocker export to ``out``; returns the number of rows written."""
    return await write_rows(blocker_rows(session, since, until), out, fmt, BLOCKER_FIELDS)
