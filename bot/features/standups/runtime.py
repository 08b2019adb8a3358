"""A standup day at run time: prompts, answers (DM conversation or form), skips, reminders, the
channel nudge and the report at the window's end.

Life of a prompt (``standup_prompts``, one per member per run)::

    prompt_member ──> pending (step 0: the DM conversation is open) ──answers──> answered
          │                 │  └─ "Skip today" / /standup skip ──> skipped
          └─ member OOO ──> away (no DM; shown as away, not counted as missing)

* A member has at most one DM conversation open: a new prompt takes it over, and an older one
  keeps its partial answers for the Answer button's form.
* Answers can be changed with the Answer button until ``run.closes_at`` (a day after the
  latest prompt); then the button and the form say so and save nothing.
* Every message goes through the outbox in the transaction that causes it, with keys derived from
  the occurrence key or the run, so a rerun never queues twice (invariants 1 and 2). The report
  is the exception that proves it: an answer only marks the report out of date, and the report's
  update is queued by the refresh that follows the answer's commit (``refresher.py``), in its own
  transaction, with the report's own keys; the marks make sure it happens even after a crash.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat
from bot.chat import (
    Actions,
    Bold,
    Button,
    Choice,
    Form,
    FormErrors,
    FormField,
    Message,
    OpenForm,
    Plain,
    Response,
    Section,
    SelectField,
    TextField,
    marked,
    message,
    reply,
    text,
)
from bot.core import Context, Core
from bot.delivery.outbox import enqueue
from bot.errors import UserError
from bot.events import ActionInvocation, DirectMessageReceived, FormSubmission
from bot.features import account
from bot.features.standups import refresher, report
from bot.features.standups.report import MOODS, answer_text, day_label
from bot.features.standups.schedules import (
    CLOSE_HANDLER,
    NUDGE_HANDLER,
    PROMPT_HANDLER,
    REFRESH_HANDLER,
    REMIND_HANDLER,
    StandupSchedules,
    edit_deadline,
    member_zone,
    prompt_time,
    runs_on,
)
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Scheduler
from bot.timezones import zone as zone_info
from storage.models import (
    Absence,
    Blocker,
    BlockerStatus,
    Channel,
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)
from storage.upsert import dialect_insert, insert_unless_exists

log = logging.getLogger(__name__)

FORM_ID = "standup-answer"
ANSWER_ACTION = "standup-answer"
SKIP_ACTION = "standup-skip"
# Answers to the blocker question that mean "nothing is blocking me".
NOT_A_BLOCKER = frozenset({"", "no", "none", "nope", "-", "n/a", "na", "nothing", "nah"})
# The question that is pre-filled, and the one it is pre-filled from ("what did you do" gets
# last time's "what will you do").
DONE_QUESTION, PLAN_QUESTION = 0, 1

__all__ = [
    "FORM_ID",
    "member_zone",
    "prompt_member",
    "register",
    "skip_today",
]


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


async def _run_for(
    session: AsyncSession, standup: Standup, run_date: date, closes_at: datetime, now: datetime
) -> StandupRun:
    """The run of ``run_date``, created if missing (concurrent creators get the same row);
    its ``closes_at`` is pushed out to ``closes_at`` if that is later."""
    await insert_unless_exists(
        session,
        StandupRun,
        {
            "standup_id": standup.id,
            "run_date": run_date,
            "closes_at": closes_at,
            "report_version": 0,
            "created_at": now,
        },
        StandupRun.id,
        ["standup_id", "run_date"],
    )
    run = await session.scalar(
        select(StandupRun)
        .where(StandupRun.standup_id == standup.id, StandupRun.run_date == run_date)
        .execution_options(populate_existing=True)
    )
    assert run is not None
    if run.closes_at < closes_at:
        run.closes_at = closes_at
    return run


async def _answers(session: AsyncSession, prompt_id: int) -> dict[int, str]:
    rows = await session.scalars(select(StandupAnswer).where(StandupAnswer.prompt_id == prompt_id))
    return {a.question_index: a.text for a in rows}


async def previous_plan(
    session: AsyncSession, standup: Standup, member: Member, before: date
) -> str | None:
    """The member's last "what will you do" answer in this standup before ``before``; None when
    the standup does not have the done/plan pair of text questions."""
    questions = standup.questions
    if len(questions) <= PLAN_QUESTION or any(
        questions[i].get("kind", "text") != "text" for i in (DONE_QUESTION, PLAN_QUESTION)
    ):
        return None
    return await session.scalar(
        select(StandupAnswer.text)
        .join(StandupPrompt, StandupPrompt.id == StandupAnswer.prompt_id)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(
            StandupRun.standup_id == standup.id,
            StandupRun.run_date < before,
            StandupPrompt.member_id == member.id,
            StandupPrompt.status == PromptStatus.ANSWERED,
            StandupAnswer.question_index == PLAN_QUESTION,
            StandupAnswer.text != "",
        )
        .order_by(StandupRun.run_date.desc())
        .limit(1)
    )


def _local(when: datetime, zone: str) -> str:
    local = when.astimezone(zone_info(zone))
    return f"{day_label(local.date())} {local:%H:%M} ({zone})"


# -- messages -----------------------------------------------------------------------------------


def _buttons(prompt: StandupPrompt) -> Actions:
    return Actions(
        (
            Button("Answer", f"{ANSWER_ACTION}:{prompt.id}", style="primary"),
            Button("Skip today", f"{SKIP_ACTION}:{prompt.id}"),
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


def prompt_message(
    standup: Standup, run: StandupRun, prompt: StandupPrompt, member: Member, plan: str | None
) -> Message:
    name = member.display_name or member.platform_user_id
    blocks: list[Any] = [
        text(f"Hi {name}! Time for ", Bold(standup.name), f" ({day_label(run.run_date)})."),
        *question_blocks(standup, DONE_QUESTION, plan),
        chat.Context(
            marked(
                "Reply here to answer one question at a time (`skip` skips one, `cancel` "
                "stops), or press Answer to fill in every answer at once."
            )
        ),
        _buttons(prompt),
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
                TextField(name, label, required=required, multiline=True, initial=current)
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
) -> bool:
    """Create the run of ``run_date`` and the member's prompt if missing, and DM the member.

    Returns True only if this call queued a prompt DM: False when the member was already
    prompted (or skipped) for that run, is away (the prompt row is then created with status
    away, and no DM), or when the date is a holiday or the standup is paused (nothing is
    created). The DM's idempotency key is ``{key_prefix}:prompt:{member id}``. The run closes
    (answers can no longer change) a day after its latest prompt, or at the window's end if
    later.
    """
    if standup.paused or run_date.isoformat() in set(standup.holidays or ()):
        return False
    run = await _run_for(session, standup, run_date, edit_deadline(standup, now), now)
    away = await is_away(session, standup.id, member.id, run_date)
    prompt_id = await insert_unless_exists(
        session,
        StandupPrompt,
        {
            "run_id": run.id,
            "member_id": member.id,
            "status": PromptStatus.AWAY if away else PromptStatus.PENDING,
            "prompted_at": None if away else now,
            "remind_at": (
                now + timedelta(minutes=standup.reminder_minutes)
                if standup.reminder_minutes is not None and not away
                else None
            ),
            "step": None if away else 0,
            "report_version": 0,
            "updated_at": now,
        },
        StandupPrompt.id,
        ["run_id", "member_id"],
    )
    if prompt_id is None:
        return False
    if not away:
        # The newest prompt takes over the member's DM conversation.
        await session.execute(
            update(StandupPrompt)
            .where(
                StandupPrompt.member_id == member.id,
                StandupPrompt.step.is_not(None),
                StandupPrompt.id != prompt_id,
            )
            .values(step=None)
        )
        prompt = await session.get(StandupPrompt, prompt_id)
        assert prompt is not None
        plan = await previous_plan(session, standup, member, run_date)
        await enqueue(
            session,
            workspace_id=standup.workspace_id,
            method=Method.DM,
            target=dm_target(member),
            message=prompt_message(standup, run, prompt, member, plan),
            key=f"{key_prefix}:prompt:{member.id}",
            now=now,
        )
    return not away


# -- answering -----------------------------------------------------------------------------------


def parse_answer(question: dict[str, Any], raw: str) -> tuple[str, str | None]:
    """A typed answer to one question: (value to store, problem). Choice and mood questions
    take the number or the label."""
    value = raw.strip()
    kind = question.get("kind", "text")
    if kind == "text":
        return value, None
    if kind == "mood":
        labels = list(MOODS)
        lowered = value.lower()
        if value.isdigit() and 1 <= int(value) <= 5:
            return value, None
        if lowered in labels:
            return str(labels.index(lowered) + 1), None
        scale = ", ".join(f"{n} {m}" for n, m in enumerate(MOODS, start=1))
        return "", f'"{value}" is not a mood; reply with a number from 1 to 5 ({scale}).'
    choices: list[str] = list(question.get("choices") or [])
    if value.isdigit() and 1 <= int(value) <= len(choices):
        return choices[int(value) - 1], None
    for choice in choices:
        if choice.lower() == value.lower():
            return choice, None
    listed = ", ".join(f"{n}) {c}" for n, c in enumerate(choices, start=1))
    return "", (
        f'"{value}" is not one of the choices; reply with a number from 1 to {len(choices)} '
        f"or the answer: {listed}."
    )


def is_blocker(answer: str) -> bool:
    return answer.strip().lower().rstrip(".!") not in NOT_A_BLOCKER


async def _save_answer(session: AsyncSession, prompt_id: int, index: int, value: str) -> None:
    await _save_answers(session, prompt_id, {index: value})


async def _save_answers(session: AsyncSession, prompt_id: int, values: dict[int, str]) -> None:
    """Insert or update in place, in one statement (an answer's id is stable: its blocker
    refers to it, and ON CONFLICT DO UPDATE keeps the row)."""
    if not values:
        return
    insert = dialect_insert(session)
    stmt = insert(StandupAnswer).values(
        [{"prompt_id": prompt_id, "question_index": i, "text": v} for i, v in values.items()]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["prompt_id", "question_index"], set_={"text": stmt.excluded.text}
    )
    await session.execute(stmt)


async def _sync_blockers(
    session: AsyncSession, standup: Standup, prompt: StandupPrompt, now: datetime
) -> None:
    """Blocker-question answers become open blockers (one per answer, updated on edit); an
    answer edited to "no" resolves its blocker."""
    indexes = [i for i, question in enumerate(standup.questions) if question.get("blocker")]
    if not indexes:
        return
    rows = await session.execute(
        select(StandupAnswer, Blocker)
        .outerjoin(Blocker, Blocker.standup_answer_id == StandupAnswer.id)
        .where(StandupAnswer.prompt_id == prompt.id, StandupAnswer.question_index.in_(indexes))
        .execution_options(populate_existing=True)  # the answers were just upserted
    )
    for answer, existing in rows.all():
        if is_blocker(answer.text):
            if existing is None:
                await insert_unless_exists(
                    session,
                    Blocker,
                    {
                        "workspace_id": standup.workspace_id,
                        "member_id": prompt.member_id,
                        "standup_answer_id": answer.id,
                        "text": answer.text.strip(),
                        "status": BlockerStatus.OPEN,
                        "created_at": now,
                    },
                    Blocker.id,
                    ["standup_answer_id"],
                )
            else:
                existing.text = answer.text.strip()
                existing.status = BlockerStatus.OPEN
                existing.resolved_at = None
        elif existing is not None and existing.status == BlockerStatus.OPEN:
            existing.status = BlockerStatus.RESOLVED
            existing.resolved_at = now


async def _complete(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    prompt: StandupPrompt,
    now: datetime,
    ctx: Context | None = None,
) -> None:
    """All answers are saved: mark answered, record blockers, mark the report out of date (it
    is refreshed after this transaction commits; see :class:`ReportRefresher`)."""
    prompt.status = PromptStatus.ANSWERED
    if prompt.answered_at is None:
        prompt.answered_at = now
    prompt.step = None
    prompt.updated_at = now
    prompt.report_dirty = True
    await session.flush()
    await _sync_blockers(session, standup, prompt, now)
    await _report_changed(session, run.id, now, ctx)


async def _report_changed(
    session: AsyncSession,
    run_id: int,
    now: datetime,
    ctx: Context | None,
    prompt_id: int | None = None,
) -> None:
    """Mark the run's report out of date and, once this event commits, have it refreshed.
    Without a context the sweep finds the mark (see ``schedules.StandupSchedules``)."""
    await report.mark_dirty(session, run_id, now, prompt_id)
    if ctx is not None:
        reports = refresher.refresher_of(ctx.core)
        if reports is not None:
            ctx.after_commit(functools.partial(reports.poke, run_id))


def _thanks(
    standup: Standup, run: StandupRun, member: Member, answers: dict[int, str], edited: bool
) -> Response:
    zone = member_zone(standup, member)
    verb = "Updated" if edited else "Thanks! Saved"
    return reply(
        text(f"{verb} your answers for ", Bold(standup.name), f" ({day_label(run.run_date)}):"),
        *summary_blocks(standup, answers),
        chat.Context(
            text(f"Press Answer on my prompt to change them until {_local(run.closes_at, zone)}.")
        ),
    )


async def _load_prompt(
    session: AsyncSession, prompt_id: int
) -> tuple[StandupPrompt, StandupRun, Standup] | None:
    row = (
        await session.execute(
            select(StandupPrompt, StandupRun, Standup)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .where(StandupPrompt.id == prompt_id)
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


async def _own_prompt(ctx: Context, raw_id: str) -> tuple[StandupPrompt, StandupRun, Standup]:
    """The prompt a button or form names; it must be the acting member's and still open."""
    try:
        prompt_id = int(raw_id)
    except ValueError:
        raise UserError("That standup button has expired.") from None
    found = await _load_prompt(ctx.session, prompt_id)
    if found is None:
        raise UserError("That standup no longer exists.")
    prompt, run, standup = found
    if prompt.member_id != ctx.member.id:
        raise UserError("That standup prompt is someone else's.")
    if ctx.now >= run.closes_at:
        zone = member_zone(standup, ctx.member)
        raise UserError(
            f"{standup.name} for {day_label(run.run_date)} closed at "
            f"{_local(run.closes_at, zone)}; answers can no longer be changed."
        )
    return prompt, run, standup


async def on_answer_button(ctx: Context, event: ActionInvocation) -> Response:
    prompt, run, standup = await _own_prompt(ctx, event.action_id.partition(":")[2])
    saved = await _answers(ctx.session, prompt.id)
    plan = await previous_plan(ctx.session, standup, ctx.member, run.run_date)
    return OpenForm(answer_form(standup, run, prompt, saved, plan))


async def on_skip_button(ctx: Context, event: ActionInvocation) -> Response:
    prompt, run, standup = await _own_prompt(ctx, event.action_id.partition(":")[2])
    return reply(await _skip(ctx.session, standup, run, prompt, ctx.now, ctx))


def form_values(standup: Standup, event: FormSubmission) -> tuple[dict[int, str], dict[str, str]]:
    """The answers a submitted form gives, by question index, and what is wrong with them by
    field name (empty when nothing is)."""
    errors: dict[str, str] = {}
    values: dict[int, str] = {}
    for i, question in enumerate(standup.questions):
        name = f"q{i}"
        raw = event.values.get(name, "")
        if isinstance(raw, list):
            raw = raw[0] if raw else ""
        raw = raw.strip()
        required = bool(question.get("required", True))
        kind = question.get("kind", "text")
        if not raw:
            if required:
                errors[name] = 'Please answer this question (write "none" if there is nothing).'
            values[i] = ""
            continue
        if kind == "choice" and raw not in (question.get("choices") or []):
            errors[name] = f'"{raw}" is not one of the choices.'
        elif kind == "mood" and raw not in {"1", "2", "3", "4", "5"}:
            errors[name] = "Pick a mood from 1 to 5."
        values[i] = raw
    return values, errors


async def on_form(ctx: Context, event: FormSubmission) -> Response:
    prompt, run, standup = await _own_prompt(ctx, event.state)
    values, errors = form_values(standup, event)
    if errors:
        return FormErrors(errors)
    edited = prompt.status == PromptStatus.ANSWERED
    await _save_answers(ctx.session, prompt.id, values)
    await _complete(ctx.session, standup, run, prompt, ctx.now, ctx)
    return _thanks(standup, run, ctx.member, values, edited)


async def _open_conversation(
    session: AsyncSession, member: Member, now: datetime
) -> tuple[StandupPrompt, StandupRun, Standup] | None:
    row = (
        await session.execute(
            select(StandupPrompt, StandupRun, Standup)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .where(
                StandupPrompt.member_id == member.id,
                StandupPrompt.step.is_not(None),
                StandupPrompt.status == PromptStatus.PENDING,
                StandupRun.closes_at > now,
            )
            .order_by(StandupPrompt.prompted_at.desc(), StandupPrompt.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


async def on_dm(ctx: Context, event: DirectMessageReceived) -> Response:
    """The DM conversation: one question at a time. None when the member has none open, so
    the core answers as it always does."""
    found = await _open_conversation(ctx.session, ctx.member, ctx.now)
    if found is None:
        return None
    prompt, run, standup = found
    questions = standup.questions
    said = event.text.strip()
    word = said.lower()
    if word == "cancel":
        await ctx.session.execute(delete(StandupAnswer).where(StandupAnswer.prompt_id == prompt.id))
        prompt.step = None
        prompt.updated_at = ctx.now
        return reply(
            text(
                "Stopped; nothing was saved. Press Answer on my prompt whenever you are ready "
                f"to answer {standup.name} for {day_label(run.run_date)}."
            )
        )
    index = prompt.step or 0
    if index >= len(questions):  # the questions were edited under a running conversation
        index = len(questions) - 1
    question = questions[index]
    plan = await previous_plan(ctx.session, standup, ctx.member, run.run_date)
    if word == "skip":
        value = ""
    elif index == DONE_QUESTION and plan and word == "same":
        value = plan
    else:
        value, problem = parse_answer(question, said)
        if problem is not None:
            return reply(text(problem), *question_blocks(standup, index, plan))
    await _save_answer(ctx.session, prompt.id, index, value)
    prompt.step = index + 1
    prompt.updated_at = ctx.now
    if prompt.step < len(questions):
        return reply(*question_blocks(standup, prompt.step, None))
    answers = await _answers(ctx.session, prompt.id)
    await _complete(ctx.session, standup, run, prompt, ctx.now, ctx)
    return _thanks(standup, run, ctx.member, answers, edited=False)


# -- skipping ------------------------------------------------------------------------------------


async def _skip(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    prompt: StandupPrompt,
    now: datetime,
    ctx: Context | None = None,
) -> str:
    label = f"{standup.name} ({day_label(run.run_date)})"
    status = PromptStatus(prompt.status)
    if status == PromptStatus.ANSWERED:
        raise UserError(f"You already answered {label}; press Answer to change your answers.")
    if status == PromptStatus.SKIPPED:
        return f"You already skipped {label}."
    if status == PromptStatus.AWAY:
        return f"You are out of office on {day_label(run.run_date)}; nothing to skip."
    prompt.status = PromptStatus.SKIPPED
    prompt.step = None
    prompt.updated_at = now
    prompt.report_dirty = True
    await session.execute(delete(StandupAnswer).where(StandupAnswer.prompt_id == prompt.id))
    await session.flush()
    await _report_changed(session, run.id, now, ctx)
    return f"Skipped {label}: no reminder for it today."


async def skip_today(
    session: AsyncSession,
    standup_or_none: Standup | None,
    member: Member,
    now: datetime,
    ctx: Context | None = None,
) -> str:
    """``/standup skip [NAME]``: skip today's prompt of one standup, or of every standup the
    member takes part in. "Today" is the member's local date in each standup's zone. Before the
    prompt time the prompt row is created already skipped, so no DM goes out at all."""
    if standup_or_none is not None:
        standups = [standup_or_none]
        member_of = await session.scalar(
            select(StandupParticipant.member_id).where(
                StandupParticipant.standup_id == standup_or_none.id,
                StandupParticipant.member_id == member.id,
            )
        )
        if member_of is None:
            raise UserError(f"You are not a participant of {standup_or_none.name}.")
    else:
        standups = list(
            await session.scalars(
                select(Standup)
                .join(StandupParticipant, StandupParticipant.standup_id == Standup.id)
                .where(StandupParticipant.member_id == member.id)
                .order_by(Standup.name)
            )
        )
    done: list[str] = []
    notes: list[str] = []
    for standup in standups:
        zone = member_zone(standup, member)
        today = now.astimezone(zone_info(zone)).date()
        run = await session.scalar(
            select(StandupRun).where(
                StandupRun.standup_id == standup.id, StandupRun.run_date == today
            )
        )
        prompt = None
        if run is not None:
            prompt = await session.scalar(
                select(StandupPrompt).where(
                    StandupPrompt.run_id == run.id, StandupPrompt.member_id == member.id
                )
            )
        if prompt is not None and run is not None:
            status = PromptStatus(prompt.status)
            if status == PromptStatus.PENDING:
                await _skip(session, standup, run, prompt, now, ctx)
                done.append(standup.name)
            elif status == PromptStatus.ANSWERED:
                notes.append(f"you already answered {standup.name}")
            elif status == PromptStatus.SKIPPED:
                notes.append(f"you already skipped {standup.name}")
            else:
                notes.append(f"you are away for {standup.name}")
            continue
        if standup.paused or not runs_on(standup, today):
            continue
        if await is_away(session, standup.id, member.id, today):
            notes.append(f"you are away for {standup.name}")
            continue
        closes = edit_deadline(standup, max(now, prompt_time(standup, zone, today)))
        run = await _run_for(session, standup, today, closes, now)
        await insert_unless_exists(
            session,
            StandupPrompt,
            {
                "run_id": run.id,
                "member_id": member.id,
                "status": PromptStatus.SKIPPED,
                "report_version": 0,
                "report_dirty": True,
                "updated_at": now,
            },
            StandupPrompt.id,
            ["run_id", "member_id"],
        )
        await _report_changed(session, run.id, now, ctx)
        done.append(standup.name)
    if not done:
        if notes:
            raise UserError(f"Nothing to skip today: {'; '.join(notes)}.")
        raise UserError("You have no standup today, so there is nothing to skip.")
    names = _join(done)
    extra = f" (Also: {'; '.join(notes)}.)" if notes else ""
    return f"Skipped today's {names}: no prompt or reminder for it today.{extra}"


def _join(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


# -- occurrences -------------------------------------------------------------------------------


async def on_prompt_occurrence(occurrence: Occurrence) -> None:
    """A standup's time has come, for one member (member-local mode) or for everyone."""
    payload = occurrence.schedule.payload
    session = occurrence.session
    standup = await session.get(Standup, payload["standup_id"])
    if standup is None or standup.paused:
        return
    run_date = occurrence.fire_at.astimezone(zone_info(payload["zone"])).date()
    query = (
        select(Member)
        .join(StandupParticipant, StandupParticipant.member_id == Member.id)
        .where(StandupParticipant.standup_id == standup.id)
        .order_by(Member.id)
    )
    if payload.get("member_id") is not None:
        query = query.where(Member.id == payload["member_id"])
    for member in list(await session.scalars(query)):
        await prompt_member(
            session, standup, member, run_date, occurrence.now, key_prefix=occurrence.key
        )
    # Reminder and run one-shots were created: the scheduler reads its sources again.
    occurrence.sent_something = True
    occurrence.schedules_changed = True


async def on_remind_occurrence(occurrence: Occurrence) -> None:
    """One DM to a member who still has not answered (nor skipped, nor is away)."""
    session = occurrence.session
    found = await _load_prompt(session, occurrence.schedule.payload["prompt_id"])
    if found is None:
        return
    prompt, run, standup = found
    if (
        prompt.status != PromptStatus.PENDING
        or prompt.reminded_at is not None
        or standup.paused
        or occurrence.now >= run.closes_at
    ):
        return
    member = await session.get(Member, prompt.member_id)
    if member is None:
        return
    prompt.reminded_at = occurrence.now
    heard, expected = await report.heard_from(session, standup, run)
    others = f" {heard} of {expected} have answered already." if heard else ""
    blocks: list[Any] = [
        text(
            "A reminder: ",
            Bold(standup.name),
            f" ({day_label(run.run_date)}) is waiting for your answers.{others}",
        )
    ]
    if prompt.step is not None:
        blocks.append(chat.Context(text("Reply here to go on where you were, or press Answer.")))
    blocks.append(_buttons(prompt))
    await occurrence.send(
        standup.workspace_id,
        Method.DM,
        dm_target(member),
        message(*blocks),
        key=f"{occurrence.key}:dm",
    )


async def _run_of(occurrence: Occurrence) -> tuple[StandupRun, Standup] | None:
    session = occurrence.session
    run = await session.get(StandupRun, occurrence.schedule.payload["run_id"])
    if run is None:
        return None
    standup = await session.get(Standup, run.standup_id)
    return None if standup is None else (run, standup)


async def on_nudge_occurrence(occurrence: Occurrence) -> None:
    """At 80% of the window: one post in the report channel naming only the missing."""
    found = await _run_of(occurrence)
    if found is None:
        return
    run, standup = found
    if not standup.channel_nudge or standup.paused:
        return
    roster = await report.load_roster(occurrence.session, standup, run)
    missing = roster.missing
    if not missing:
        return
    channel = await occurrence.session.get(Channel, standup.report_channel_id)
    if channel is None:
        return
    await occurrence.send(
        standup.workspace_id,
        Method.POST,
        Target(channel_id=channel.external_id),
        report.nudge_message(standup, run, missing),
        key=f"{occurrence.key}:post",
    )


async def on_close_occurrence(occurrence: Occurrence) -> None:
    """The window's end: the cutoff report, or (each mode) a report even if nobody answered."""
    found = await _run_of(occurrence)
    if found is None:
        return
    run, standup = found
    if await report.refresh(occurrence.session, standup, run, occurrence.now, publish=True):
        occurrence.sent_something = True


async def on_refresh_occurrence(occurrence: Occurrence) -> None:
    """The sweep: a run whose report was marked out of date a while ago and not refreshed (the
    process died between an answer's commit and its refresh, or a refresh failed)."""
    found = await _run_of(occurrence)
    if found is None:
        return
    run, standup = found
    if await report.refresh_marked(occurrence.session, standup, run, occurrence.now):
        occurrence.sent_something = True


# -- wiring ---------------------------------------------------------------------------------------


def register(core: Core, scheduler: Scheduler) -> None:
    scheduler.add_source(StandupSchedules())
    scheduler.add_handler(PROMPT_HANDLER, on_prompt_occurrence)
    scheduler.add_handler(REMIND_HANDLER, on_remind_occurrence)
    scheduler.add_handler(NUDGE_HANDLER, on_nudge_occurrence)
    scheduler.add_handler(CLOSE_HANDLER, on_close_occurrence)
    scheduler.add_handler(REFRESH_HANDLER, on_refresh_occurrence)
    refresher.install(core)
    from bot.features.standups import answer_batch  # it imports this module

    core.add_action(ANSWER_ACTION, on_answer_button)
    core.add_action(SKIP_ACTION, on_skip_button)
    core.add_form(FORM_ID, on_form, batch=answer_batch.on_form_batch)
    core.add_dm_handler(on_dm)
