"""Answering a prompt: the DM conversation (one question at a time), the Answer button and its
form, saving answers and the blockers they name, and marking the report out of date.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat
from bot.chat import (
    Bold,
    FormErrors,
    OpenForm,
    Response,
    reply,
    text,
)
from bot.core import Context
from bot.errors import UserError
from bot.events import ActionInvocation, DirectMessageReceived, FormSubmission
from bot.features.blockers import standup as blocker_answers
from bot.features.standups import refresher, report
from bot.features.standups.prompts import (
    DONE_QUESTION,
    MAX_ANSWER_CHARS,
    answer_form,
    local_time,
    previous_plan,
    question_blocks,
    saved_answers,
    summary_blocks,
)
from bot.features.standups.report_messages import MOODS, day_label
from bot.features.standups.schedules import (
    member_zone,
)
from storage.models import (
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
)
from storage.upsert import dialect_insert

# Answers to the blocker question that mean "nothing is blocking me".
NOT_A_BLOCKER = frozenset({"", "no", "none", "nope", "-", "n/a", "na", "nothing", "nah"})


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


async def save_answer(session: AsyncSession, prompt_id: int, index: int, value: str) -> None:
    await save_answers(session, prompt_id, {index: value})


async def save_answers(session: AsyncSession, prompt_id: int, values: dict[int, str]) -> None:
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


async def sync_blockers(
    session: AsyncSession,
    standup: Standup,
    prompt: StandupPrompt,
    now: datetime,
    member: Member | None = None,
) -> bool:
    """Blocker-question answers become tracked blockers (see ``bot.features.blockers.standup``:
    opened with a card, or the member's open blocker updated when it is the same one); an
    answer edited to "no" resolves its blocker. Returns whether a blocker changed (its card and
    webhooks are then in the outbox)."""
    indexes = [i for i, question in enumerate(standup.questions) if question.get("blocker")]
    if not indexes:
        return False
    answers = (
        await session.scalars(
            select(StandupAnswer)
            .where(StandupAnswer.prompt_id == prompt.id, StandupAnswer.question_index.in_(indexes))
            .execution_options(populate_existing=True)  # the answers were just upserted
        )
    ).all()
    if member is None:
        member = await session.get(Member, prompt.member_id)
    assert member is not None
    tracked = [
        blocker_answers.Answered(answer.id, member, answer.text, is_blocker(answer.text))
        for answer in answers
    ]
    return await blocker_answers.track(session, standup.workspace_id, tracked, now) > 0


async def complete(
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
    if await sync_blockers(session, standup, prompt, now, ctx.member if ctx else None):
        if ctx is not None:
            ctx.sent_something = True  # the blockers' cards
            ctx.schedules_changed = True  # and their escalation
    await report_changed(session, run.id, now, ctx)


async def report_changed(
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


def thanks(
    standup: Standup, run: StandupRun, member: Member, answers: dict[int, str], edited: bool
) -> Response:
    zone = member_zone(standup, member)
    verb = "Updated" if edited else "Thanks! Saved"
    return reply(
        text(f"{verb} your answers for ", Bold(standup.name), f" ({day_label(run.run_date)}):"),
        *summary_blocks(standup, answers),
        chat.Context(
            text(
                f"Press Answer on my prompt to change them until {local_time(run.closes_at, zone)}."
            )
        ),
    )


async def load_prompt(
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


async def own_prompt(ctx: Context, raw_id: str) -> tuple[StandupPrompt, StandupRun, Standup]:
    """The prompt a button or form names; it must be the acting member's and still open."""
    try:
        prompt_id = int(raw_id)
    except ValueError:
        raise UserError("That standup button has expired.") from None
    found = await load_prompt(ctx.session, prompt_id)
    if found is None:
        raise UserError("That standup no longer exists.")
    prompt, run, standup = found
    if prompt.member_id != ctx.member.id:
        raise UserError("That standup prompt is someone else's.")
    if ctx.now >= run.closes_at:
        zone = member_zone(standup, ctx.member)
        raise UserError(
            f"{standup.name} for {day_label(run.run_date)} closed at "
            f"{local_time(run.closes_at, zone)}; answers can no longer be changed."
        )
    return prompt, run, standup


async def on_answer_button(ctx: Context, event: ActionInvocation) -> Response:
    prompt, run, standup = await own_prompt(ctx, event.action_id.partition(":")[2])
    saved = await saved_answers(ctx.session, prompt.id)
    plan = await previous_plan(ctx.session, standup, ctx.member, run.run_date)
    return OpenForm(answer_form(standup, run, prompt, saved, plan))


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
        if len(raw) > MAX_ANSWER_CHARS:
            errors[name] = (
                f"This answer is {len(raw):,} characters long; keep it to {MAX_ANSWER_CHARS:,}."
            )
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
    prompt, run, standup = await own_prompt(ctx, event.state)
    values, errors = form_values(standup, event)
    if errors:
        return FormErrors(errors)
    edited = prompt.status == PromptStatus.ANSWERED
    await save_answers(ctx.session, prompt.id, values)
    await complete(ctx.session, standup, run, prompt, ctx.now, ctx)
    return thanks(standup, run, ctx.member, values, edited)


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
    if len(said) > MAX_ANSWER_CHARS:
        return reply(
            text(
                f"That answer is {len(said):,} characters long; answers stop at "
                f"{MAX_ANSWER_CHARS:,} (as in the form). Shorten it and send it again."
            ),
            *question_blocks(standup, index, plan),
        )
    if word == "skip":
        value = ""
    elif index == DONE_QUESTION and word == "same" and question.get("kind", "text") == "text":
        if not plan:
            return reply(
                text("You have no earlier plan to reuse; type your answer."),
                *question_blocks(standup, index, plan),
            )
        value = plan
    else:
        value, problem = parse_answer(question, said)
        if problem is not None:
            return reply(text(problem), *question_blocks(standup, index, plan))
    await save_answer(ctx.session, prompt.id, index, value)
    prompt.step = index + 1
    prompt.updated_at = ctx.now
    if prompt.step < len(questions):
        return reply(*question_blocks(standup, prompt.step, None))
    answers = await saved_answers(ctx.session, prompt.id)
    await complete(ctx.session, standup, run, prompt, ctx.now, ctx)
    return thanks(standup, run, ctx.member, answers, edited=False)
