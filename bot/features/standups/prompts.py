"""A standup prompt: the run it belongs to, the DM that asks, the questions one at a time, the
answer form, and :func:`prompt_member`, which creates the prompt and queues the DM.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat
from bot.chat import (
    Actions,
    Bold,
    Button,
    Choice,
    Form,
    FormField,
    Message,
    MessageDumper,
    Plain,
    Section,
    SelectField,
    TextField,
    marked,
    message,
    text,
)
from bot.delivery.outbox import Outgoing, enqueue_many
from bot.features import account
from bot.features.standups.report_messages import MOODS, answer_text, day_label
from bot.features.standups.schedules import (
    edit_deadline,
)
from bot.port import Method, Target
from bot.timezones import zone as zone_info
from storage.models import (
    Absence,
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)
from storage.upsert import insert_do_nothing, insert_unless_exists

FORM_ID = "standup-answer"
# The longest answer, typed in a DM or in the form (the form field's limit, Slack's section).
MAX_ANSWER_CHARS = 3000
ANSWER_ACTION = "standup-answer"
SKIP_ACTION = "standup-skip"
# The question that is pre-filled, and the one it is pre-filled from ("what did you do" gets
# last time's "what will you do").
DONE_QUESTION, PLAN_QUESTION = 0, 1
# Members prompted per round of statements (prompt_members): bounds the memory an occurrence
# of any size takes, and each statement's bound parameters.
PROMPT_SLICE = 500
YIELD_EVERY = 50


# -- small queries ------------------------------------------------------------------------------


def dm_target(member: Member) -> Target:
    return Target(user_id=member.platform_user_id, dm_channel_id=member.dm_channel_id)


async def is_away(session: AsyncSession, standup_id: int, member_id: int, day: date) -> bool:
    found = await session.scalar(
        select(Absence.id)
        .where(
            Absence.member_id == member_id,
            or_(Absence.standup_id.is_(None), Absence.standup_id == standup_id),
            Absence.start_date <= day,
            Absence.end_date >= day,
        )
        .limit(1)
    )
    return found is not None


async def run_for(
    session: AsyncSession,
    standup: Standup,
    run_date: date,
    closes_at: datetime,
    now: datetime,
    occasion: str = "",
) -> StandupRun:
    """The run of ``run_date`` (the scheduled one, or with ``occasion`` one started by hand),
    created if missing (concurrent creators get the same row); its ``closes_at`` is pushed out
    to ``closes_at`` if that is later."""
    await insert_unless_exists(
        session,
        StandupRun,
        {
            "standup_id": standup.id,
            "run_date": run_date,
            "occasion": occasion,
            "closes_at": closes_at,
            "report_version": 0,
            "created_at": now,
        },
        StandupRun.id,
        ["standup_id", "run_date", "occasion"],
    )
    run = await session.scalar(
        select(StandupRun)
        .where(
            StandupRun.standup_id == standup.id,
            StandupRun.run_date == run_date,
            StandupRun.occasion == occasion,
        )
        .execution_options(populate_existing=True)
    )
    assert run is not None
    if run.closes_at < closes_at:
        run.closes_at = closes_at
    return run


async def saved_answers(session: AsyncSession, prompt_id: int) -> dict[int, str]:
    rows = await session.scalars(select(StandupAnswer).where(StandupAnswer.prompt_id == prompt_id))
    return {a.question_index: a.text for a in rows}


async def previous_plan(
    session: AsyncSession, standup: Standup, member: Member, before: date
) -> str | None:
    """The member's last "what will you do" answer in this standup before ``before``; None when
    the standup does not have the done/plan pair of text questions."""
    return (await previous_plans(session, standup, [member.id], before)).get(member.id)


async def previous_plans(
    session: AsyncSession, standup: Standup, member_ids: Sequence[int], before: date
) -> dict[int, str]:
    """:func:`previous_plan` of many members in one query (a window per member)."""
    questions = standup.questions
    if not member_ids or (
        len(questions) <= PLAN_QUESTION
        or any(questions[i].get("kind", "text") != "text" for i in (DONE_QUESTION, PLAN_QUESTION))
    ):
        return {}
    latest = func.row_number().over(
        partition_by=StandupPrompt.member_id,
        order_by=(StandupRun.run_date.desc(), StandupRun.id.desc()),
    )
    ranked = (
        select(StandupPrompt.member_id, StandupAnswer.text, latest.label("n"))
        .join(StandupPrompt, StandupPrompt.id == StandupAnswer.prompt_id)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(
            StandupRun.standup_id == standup.id,
            StandupRun.run_date < before,
            StandupPrompt.member_id.in_(list(member_ids)),
            StandupPrompt.status == PromptStatus.ANSWERED,
            StandupAnswer.question_index == PLAN_QUESTION,
            StandupAnswer.text != "",
        )
        .subquery()
    )
    rows = await session.execute(select(ranked.c.member_id, ranked.c.text).where(ranked.c.n == 1))
    return {member_id: plan for member_id, plan in rows.tuples()}


def local_time(when: datetime, zone: str) -> str:
    local = when.astimezone(zone_info(zone))
    return f"{day_label(local.date())} {local:%H:%M} ({zone})"


# -- messages -----------------------------------------------------------------------------------


def prompt_buttons(prompt_id: int) -> Actions:
    return Actions(
        (
            Button("Answer", f"{ANSWER_ACTION}:{prompt_id}", style="primary"),
            Button("Skip today", f"{SKIP_ACTION}:{prompt_id}"),
        )
    )


def question_blocks(standup: Standup, index: int, plan: str | None) -> list[Any]:
    """One question of the DM conversation, with how to answer it."""
    questions = standup.questions
    question = questions[index]
    blocks: list[Any] = [
        Section(text(Bold(f"({index + 1}/{len(questions)}) "), Plain(question["text"])))
    ]
    kind = question.get("kind", "text")
    if kind == "choice":
        options = "  ".join(f"{n}) {c}" for n, c in enumerate(question["choices"], start=1))
        blocks.append(chat.Context(text("Reply with a number or the answer: ", Plain(options))))
    elif kind == "mood":
        scale = ", ".join(f"{n} {label}" for n, label in enumerate(MOODS, start=1))
        blocks.append(chat.Context(text(f"Reply with a number from 1 to 5 ({scale}).")))
    if index == DONE_QUESTION and plan:
        blocks.append(
            chat.Context(
                text("Last time you planned: ", Plain(plan), marked("; reply `same` to reuse it."))
            )
        )
    return blocks


@functools.cache
def _answer_hint() -> chat.Context:
    return chat.Context(
        marked(
            "Reply here to answer one question at a time (`skip` skips one, `cancel` "
            "stops), or press Answer to fill in every answer at once."
        )
    )


def prompt_message(
    standup: Standup, run: StandupRun, prompt_id: int, member: Member, plan: str | None
) -> Message:
    name = member.display_name or member.platform_user_id
    blocks: list[Any] = [
        text(f"Hi {name}! Time for ", Bold(standup.name), f" ({day_label(run.run_date)})."),
        *question_blocks(standup, DONE_QUESTION, plan),
        _answer_hint(),
        prompt_buttons(prompt_id),
    ]
    if member.timezone is None and not standup.team_timezone:
        # The platform gave no zone (Discord has none in profiles): ask, once per prompt until
        # the member answers; until then their prompts follow UTC.
        blocks += [
            chat.Context(
                marked(
                    f"I don't know your time zone yet, so this came at {standup.time_of_day} "
                    "UTC. Pick yours below (or type `/syncup timezone Area/City`) and your "
                    "standups will reach you at your own local time."
                )
            ),
            account.timezone_picker(),
        ]
    return message(*blocks, summary=f"{standup.name}: {standup.questions[0]['text']}")


def summary_blocks(standup: Standup, answers: dict[int, str]) -> list[Any]:
    blocks: list[Any] = []
    for i, question in enumerate(standup.questions):
        blocks.append(
            Section(text(Bold(question["text"]), "\n", answer_text(question, answers.get(i, ""))))
        )
    return blocks


def answer_form(
    standup: Standup,
    run: StandupRun,
    prompt: StandupPrompt,
    saved: dict[int, str],
    plan: str | None,
) -> Form:
    fields: list[FormField] = []
    for i, question in enumerate(standup.questions):
        name, label = f"q{i}", question["text"]
        kind = question.get("kind", "text")
        required = bool(question.get("required", True))
        current = saved.get(i, "")
        if kind == "choice":
            options = tuple(Choice(c, c) for c in question["choices"])
            initial = (current,) if current in question["choices"] else ()
            fields.append(SelectField(name, label, options, required=required, initial=initial))
        elif kind == "mood":
            options = tuple(Choice(f"{n} {m}", str(n)) for n, m in enumerate(MOODS, start=1))
            initial = (current,) if current in {c.value for c in options} else ()
            fields.append(SelectField(name, label, options, required=required, initial=initial))
        else:
            if not current and i == DONE_QUESTION and plan:
                current = plan
            fields.append(
                TextField(
                    name,
                    label,
                    required=required,
                    multiline=True,
                    initial=current,
                    max_length=MAX_ANSWER_CHARS,
                )
            )
    title = standup.name if len(standup.name) <= 24 else "Standup answers"
    return Form(FORM_ID, title, tuple(fields), submit_label="Save", state=str(prompt.id))


# -- prompting ---------------------------------------------------------------------------------


async def prompt_member(
    session: AsyncSession,
    standup: Standup,
    member: Member,
    run_date: date,
    now: datetime,
    *,
    key_prefix: str,
    occasion: str = "",
    local_date: date | None = None,
) -> bool:
    """Create the run of ``run_date`` and the member's prompt if missing, and DM the member.

    With ``occasion`` the run is one started by hand (``/standup run``): a run of its own beside
    the scheduled run of that date, so that it takes nobody's scheduled prompt; holidays do not
    stop it (someone asked for it), and an absence counts on the member's ``local_date``.

    Returns True only if this call queued a prompt DM: False when the member was already
    prompted (or skipped) for that run, is away (the prompt row is then created with status
    away, and no DM), or when the date is a holiday or the standup is paused (nothing is
    created). The DM's idempotency key is ``{key_prefix}:prompt:{member id}``. The run closes
    (answers can no longer change) a day after its latest prompt, or at the window's end if
    later.
    """
    local_dates = {member.id: local_date} if local_date is not None else None
    asked = await prompt_members(
        session,
        standup,
        [member],
        run_date,
        now,
        key_prefix=key_prefix,
        occasion=occasion,
        local_dates=local_dates,
    )
    return member.id in asked


def prompt_key(key_prefix: str, member_id: int) -> str:
    """The outbox key of a member's prompt DM in the occurrence of ``key_prefix``."""
    return f"{key_prefix}:prompt:{member_id}"


async def prompt_members(
    session: AsyncSession,
    standup: Standup,
    people: Sequence[Member],
    run_date: date,
    now: datetime,
    *,
    key_prefix: str,
    occasion: str = "",
    local_dates: dict[int, date] | None = None,
    run: StandupRun | None = None,
) -> set[int]:
    """:func:`prompt_member` for many members at once: a handful of multi-row statements per
    slice of :data:`PROMPT_SLICE` members instead of eight per member (5,000 prompts took 74 s
    one at a time on PostgreSQL). Returns the ids of the members whose DM this call queued;
    keys and outcome are exactly those of :func:`prompt_member` for each."""
    if standup.paused:
        return set()
    if not occasion and run_date.isoformat() in set(standup.holidays or ()):
        return set()
    if run is None:  # else the caller has just made or found it (run_for)
        run = await run_for(session, standup, run_date, edit_deadline(standup, now), now, occasion)
    asked: set[int] = set()
    for start in range(0, len(people), PROMPT_SLICE):
        chunk = people[start : start + PROMPT_SLICE]
        days = {m.id: (local_dates or {}).get(m.id, run_date) for m in chunk}
        asked |= await _prompt_slice(session, standup, run, chunk, days, now, key_prefix)
    return asked


async def prompt_participants(
    session: AsyncSession,
    standup: Standup,
    run_date: date,
    now: datetime,
    *,
    key_prefix: str,
    member_id: int | None = None,
) -> int:
    """:func:`prompt_members` for every participant of ``standup`` (or the one), read a slice
    at a time and let go of after it (memory stays flat for a team of any size); returns how
    many were asked."""
    asked, after = 0, 0
    while True:
        query = (
            select(Member)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            # Filtered and ordered on the participants' key, not on members.id: the same
            # query with ``Member.id > after`` made PostgreSQL's generic plan (a prepared
            # statement's sixth run) join every participant to every member, 0.1-0.5 s a page.
            .where(
                StandupParticipant.standup_id == standup.id, StandupParticipant.member_id > after
            )
            .order_by(StandupParticipant.member_id)
            .limit(PROMPT_SLICE)
        )
        if member_id is not None:
            query = query.where(Member.id == member_id)
        people = list(await session.scalars(query))
        if not people:
            return asked
        asked += len(
            await prompt_members(session, standup, people, run_date, now, key_prefix=key_prefix)
        )
        after = people[-1].id
        for member in people:
            session.expunge(member)


async def _prompt_slice(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    people: Sequence[Member],
    days: dict[int, date],
    now: datetime,
    key_prefix: str,
) -> set[int]:
    away = await away_members(session, standup.id, days)
    remind_at = (
        now + timedelta(minutes=standup.reminder_minutes)
        if standup.reminder_minutes is not None
        else None
    )
    rows = [
        {
            "run_id": run.id,
            "member_id": m.id,
            "status": PromptStatus.AWAY if m.id in away else PromptStatus.PENDING,
            "prompted_at": None if m.id in away else now,
            "remind_at": None if m.id in away else remind_at,
            "step": None if m.id in away else 0,
            "report_version": 0,
            "updated_at": now,
        }
        for m in people
    ]
    # The table, not the mapped class: the ORM's bulk-insert bookkeeping was a tenth of the
    # time (as in enqueue_many).
    table = StandupPrompt.__table__
    stmt = insert_do_nothing(session, table, ["run_id", "member_id"]).returning(
        table.c.id, table.c.member_id
    )
    created = {member_id: prompt_id for prompt_id, member_id in await session.execute(stmt, rows)}
    asked = [m for m in people if m.id in created and m.id not in away]
    if not asked:
        return set()
    # The newest prompt takes over each member's DM conversation.
    await session.execute(
        update(StandupPrompt)
        .where(
            StandupPrompt.member_id.in_([m.id for m in asked]),
            StandupPrompt.step.is_not(None),
            StandupPrompt.run_id != run.id,
        )
        .values(step=None)
    )
    plans = await previous_plans(session, standup, [m.id for m in asked], run.run_date)
    dumper = MessageDumper()  # the blocks every prompt shares are dumped once
    out = []
    for n, m in enumerate(asked):
        if n and not n % YIELD_EVERY:
            # Rendering is CPU work: let the event loop serve others (the delivery worker
            # sending the first DMs, answers, votes) in between.
            await asyncio.sleep(0)
        msg = prompt_message(standup, run, created[m.id], m, plans.get(m.id))
        key = prompt_key(key_prefix, m.id)
        payload = dumper.dump(msg)
        out.append(Outgoing(standup.workspace_id, Method.DM, dm_target(m), msg, key, None, payload))
    await enqueue_many(session, out, now)
    return {m.id for m in asked}


async def away_members(session: AsyncSession, standup_id: int, days: dict[int, date]) -> set[int]:
    """Which of the members (id -> the day that counts for them) are away that day."""
    if not days:
        return set()
    rows = await session.execute(
        select(Absence.member_id, Absence.start_date, Absence.end_date).where(
            Absence.member_id.in_(list(days)),
            or_(Absence.standup_id.is_(None), Absence.standup_id == standup_id),
            Absence.start_date <= max(days.values()),
            Absence.end_date >= min(days.values()),
        )
    )
    return {m for m, start, end in rows.tuples() if start <= days[m] <= end}
