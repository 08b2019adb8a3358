"""A standup prompt: the run it belongs to, the DM that asks, the questions one at a time, the
answer form, and :func:`prompt_member`, which creates the prompt and queues the DM.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
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
    Plain,
    Section,
    SelectField,
    TextField,
    marked,
    message,
    text,
)
from bot.delivery.outbox import enqueue
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
    StandupPrompt,
    StandupRun,
)
from storage.upsert import insert_unless_exists

FORM_ID = "standup-answer"
# The longest answer, typed in a DM or in the form (the form field's limit, Slack's section).
MAX_ANSWER_CHARS = 3000
ANSWER_ACTION = "standup-answer"
SKIP_ACTION = "standup-skip"
# The question that is pre-filled, and the one it is pre-filled from ("what did you do" gets
# last time's "what will you do").
DONE_QUESTION, PLAN_QUESTION = 0, 1


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


def local_time(when: datetime, zone: str) -> str:
    local = when.astimezone(zone_info(zone))
    return f"{day_label(local.date())} {local:%H:%M} ({zone})"


# -- messages -----------------------------------------------------------------------------------


def prompt_buttons(prompt: StandupPrompt) -> Actions:
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
        prompt_buttons(prompt),
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
    if standup.paused:
        return False
    if not occasion and run_date.isoformat() in set(standup.holidays or ()):
        return False
    run = await run_for(session, standup, run_date, edit_deadline(standup, now), now, occasion)
    away = await is_away(session, standup.id, member.id, local_date or run_date)
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
