"""Standup answer forms, group-committed (see :mod:`bot.batching`).

At 09:00 a whole team presses Save within a minute. Each submission in a batch that is a plain
first answer (the member's own pending prompt, window open, nothing about the member to update)
is written with the others: one query loads every prompt with its run, standup, member and
workspace; one multi-row upsert stores every answer; one bulk update marks every prompt
answered and its report reply out of date; one insert records the blockers. Everything else (an
edit, someone else's prompt, a closed window, a new display name) goes back to
:func:`answers.on_form`, one at a time, which knows every case. The outcome is the same either
way; the tests check it on both paths.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import select, update

from bot.batching import Batch, BatchItem
from bot.chat import FormErrors
from bot.features.blockers import standup as blocker_answers
from bot.features.standups import refresher, report
from bot.features.standups.answers import form_values, is_blocker, thanks
from storage.models import (
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
    Workspace,
)
from storage.upsert import dialect_insert


@dataclass
class _Accepted:
    item: BatchItem
    prompt: StandupPrompt
    run: StandupRun
    standup: Standup
    member: Member
    values: dict[int, str]


def _plain_first_answer(
    item: BatchItem,
    prompt: StandupPrompt,
    run: StandupRun,
    member: Member,
    workspace: Workspace,
    batch: Batch,
) -> bool:
    """Whether the batch may take this submission: anything it would have to decide or update
    beyond the answers themselves is left to the one-event path."""
    event = item.event
    actor, origin = event.actor, event.origin
    return (
        workspace.platform == origin.platform
        and workspace.external_id == origin.workspace_id
        and (not origin.workspace_name or origin.workspace_name == workspace.name)
        and member.platform_user_id == actor.user_id
        and (not actor.display_name or actor.display_name == member.display_name)
        and (
            not actor.timezone or member.timezone_set_by_member or actor.timezone == member.timezone
        )
        and prompt.status == PromptStatus.PENDING
        and batch.now < run.closes_at
    )


async def on_form_batch(batch: Batch) -> None:
    session = batch.session
    wanted: dict[int, list[BatchItem]] = {}
    for item in batch.items:
        try:
            wanted.setdefault(int(item.event.state), []).append(item)
        except ValueError:
            item.fallback = True
    rows = await session.execute(
        select(StandupPrompt, StandupRun, Standup, Member, Workspace)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .join(Standup, Standup.id == StandupRun.standup_id)
        .join(Member, Member.id == StandupPrompt.member_id)
        .join(Workspace, Workspace.id == Member.workspace_id)
        .where(StandupPrompt.id.in_(list(wanted)))
    )
    found = {row[0].id: row for row in rows.tuples()}
    accepted: list[_Accepted] = []
    for prompt_id, items in wanted.items():
        row = found.get(prompt_id)
        for n, item in enumerate(items):
            # A second submission for one prompt in the same batch is an edit of the first.
            if (
                row is None
                or n > 0
                or not _plain_first_answer(item, row[0], row[1], row[3], row[4], batch)
            ):
                item.fallback = True
                continue
            prompt, run, standup, member, _ = row
            values, errors = form_values(standup, item.event)
            if errors:
                item.response = FormErrors(errors)
                continue
            accepted.append(_Accepted(item, prompt, run, standup, member, values))
    if not accepted:
        return
    await _store(batch, accepted)
    for a in accepted:
        a.item.response = thanks(a.standup, a.run, a.member, a.values, edited=False)


async def _store(batch: Batch, accepted: list[_Accepted]) -> None:
    session, now = batch.session, batch.now
    insert = dialect_insert(session)
    # The answers (a DM conversation left half done may have stored some already).
    answer_rows = [
        {"prompt_id": a.prompt.id, "question_index": i, "text": text}
        for a in accepted
        for i, text in a.values.items()
    ]
    upsert = insert(StandupAnswer)
    upsert = upsert.on_conflict_do_update(
        index_elements=["prompt_id", "question_index"], set_={"text": upsert.excluded.text}
    ).returning(StandupAnswer.id, StandupAnswer.prompt_id, StandupAnswer.question_index)
    stored = (await session.execute(upsert, answer_rows)).tuples().all()
    # Blocker answers become tracked blockers, with their cards in the outbox, in this batch's
    # transaction (see bot.features.blockers.standup; a pending prompt has none yet).
    by_prompt = {a.prompt.id: a for a in accepted}
    tracked: dict[int, list[blocker_answers.Answered]] = {}
    for answer_id, prompt_id, index in stored:
        a = by_prompt[prompt_id]
        question = a.standup.questions[index] if index < len(a.standup.questions) else {}
        answer = a.values.get(index, "")
        if question.get("blocker"):
            tracked.setdefault(a.standup.workspace_id, []).append(
                blocker_answers.Answered(answer_id, a.member, answer, is_blocker(answer))
            )
    changed = 0
    for workspace_id, answers in tracked.items():
        changed += await blocker_answers.track(session, workspace_id, answers, now)
    if changed:
        batch.after_commit(functools.partial(_wake_outbox, batch))
    await session.execute(
        update(StandupPrompt),
        [
            {
                "id": a.prompt.id,
                "status": PromptStatus.ANSWERED,
                "answered_at": a.prompt.answered_at or now,
                "step": None,
                "updated_at": now,
                "report_dirty": True,
            }
            for a in accepted
        ],
    )
    # The runs' reports: marked for the sweep, and refreshed once this batch has committed.
    reports = refresher.refresher_of(batch.core)
    for run in {a.run.id: a.run for a in accepted}.values():
        if run.report_dirty_since is None:
            await report.mark_dirty(session, run.id, now)
        if reports is not None:
            batch.after_commit(functools.partial(reports.poke, run.id))


def _wake_outbox(batch: Batch) -> None:
    """The blockers' cards are queued and their ladders booked: wake the delivery worker and
    have the scheduler read the earliest escalation again."""
    for wake in batch.core.on_outbox:
        wake()
    for changed in batch.core.on_schedules_changed:
        batch.core.spawn(changed(), name="schedules after standup blockers")
