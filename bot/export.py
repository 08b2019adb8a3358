"""Operator exports (``syncup export ...``), streamed from the database to CSV or JSON.

:func:`standup_rows` yields one :class:`StandupExportRow` per stored answer, plus one row with an
empty question and answer for each prompt that has no answer (away, skipped, unreachable, still
pending). Rows come from a server-side cursor in batches (``yield_per``), so an export of years of
standups never holds more than a batch in memory; the writers emit each row as it arrives.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) get a leading apostrophe; JSON keeps every value verbatim.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Member,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
    Workspace,
)

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


async def write_csv(rows: AsyncIterator[StandupExportRow], out: TextIO) -> int:
    """Write a header and the rows as CSV; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    count = 0
    async for row in rows:
        writer.writerow([_cell("" if v is None else v) for v in dataclasses.astuple(row)])
        count += 1
    return count


async def write_json(rows: AsyncIterator[StandupExportRow], out: TextIO) -> int:
    """Write the rows as a JSON array of objects, one per line; returns the number of rows."""
    count = 0
    out.write("[")
    async for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(dataclasses.asdict(row), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


async def export_standups(
    session: AsyncSession,
    out: TextIO,
    since: date,
    until: date | None = None,
    fmt: ExportFormat = "csv",
) -> int:
    """Stream the standup export to ``out``; returns the number of rows written."""
    rows = standup_rows(session, since, until)
    if fmt == "json":
        return await write_json(rows, out)
    return await write_csv(rows, out)
