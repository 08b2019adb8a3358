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

import logging
from typing import Any

from bot import chat
from bot.chat import (
    Bold,
    message,
    text,
)
from bot.core import Core
from bot.features.standups import fanout, refresher, report
from bot.features.standups.answer_batch import on_form_batch
from bot.features.standups.answers import load_prompt, on_answer_button, on_dm, on_form
from bot.features.standups.prompts import (
    ANSWER_ACTION,
    FORM_ID,
    SKIP_ACTION,
    dm_target,
    prompt_buttons,
    prompt_member,
    prompt_participants,
)
from bot.features.standups.report_messages import day_label
from bot.features.standups.schedules import (
    CLOSE_HANDLER,
    NUDGE_HANDLER,
    PROMPT_HANDLER,
    REFRESH_HANDLER,
    REMIND_HANDLER,
    StandupSchedules,
)
from bot.features.standups.skips import on_skip_button
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Scheduler
from bot.timezones import zone as zone_info
from storage.models import (
    Channel,
    Member,
    PromptStatus,
    Standup,
    StandupRun,
)

log = logging.getLogger(__name__)


# -- occurrences -------------------------------------------------------------------------------


async def on_prompt_occurrence(occurrence: Occurrence) -> None:
    """A standup's time has come, for one member (member-local mode) or for everyone."""
    payload = occurrence.schedule.payload
    session = occurrence.session
    standup = await session.get(Standup, payload["standup_id"])
    if standup is None or standup.paused:
        return
    run_date = occurrence.fire_at.astimezone(zone_info(payload["zone"])).date()
    await prompt_participants(
        session,
        standup,
        run_date,
        occurrence.now,
        key_prefix=occurrence.key,
        member_id=payload.get("member_id"),
    )
    # Reminder and run one-shots were created: the scheduler reads its sources again.
    occurrence.sent_something = True
    occurrence.schedules_changed = True


async def on_remind_occurrence(occurrence: Occurrence) -> None:
    """One DM to a member who still has not answered (nor skipped, nor is away)."""
    session = occurrence.session
    found = await load_prompt(session, occurrence.schedule.payload["prompt_id"])
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
    blocks.append(prompt_buttons(prompt.id))
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
    scheduler.add_source(fanout.FanoutSchedules())
    scheduler.add_handler(fanout.FANOUT_HANDLER, fanout.on_fanout_occurrence)
    scheduler.add_handler(PROMPT_HANDLER, on_prompt_occurrence)
    scheduler.add_handler(REMIND_HANDLER, on_remind_occurrence)
    scheduler.add_handler(NUDGE_HANDLER, on_nudge_occurrence)
    scheduler.add_handler(CLOSE_HANDLER, on_close_occurrence)
    scheduler.add_handler(REFRESH_HANDLER, on_refresh_occurrence)
    refresher.install(core)
    core.add_action(ANSWER_ACTION, on_answer_button)
    core.add_action(SKIP_ACTION, on_skip_button)
    core.add_form(FORM_ID, on_form, batch=on_form_batch)
    core.add_dm_handler(on_dm)


__all__ = ["FORM_ID", "dm_target", "prompt_member", "register"]
