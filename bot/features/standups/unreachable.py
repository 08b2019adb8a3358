"""Members the platform will not let syncup DM: their standup prompt becomes *unreachable*.

The platform tells the delivery worker that a member cannot be messaged at all (Discord 50007:
their DMs are closed; Slack: a deactivated account) by refusing the DM with
:class:`~bot.port.RecipientUnreachable`; the worker dead-letters the row and tells its
``on_dead_letter`` callbacks (:class:`~bot.delivery.worker.DeadLetter`). For a standup prompt or
reminder DM, this module then, in one transaction of its own:

* sets the prompt's status to ``unreachable``, only if it is still ``pending`` (an answer or a
  skip that got there first wins; the DM conversation is closed);
* DMs the standup's owner, once per member and run (the key is derived from both), saying who
  could not be reached, where they are shown, and what fixes it (not when the owner is that
  member: that DM would be refused too);
* marks the run's report out of date, and after commit pokes the report refresher (the sweep
  covers a crash), so the report shows the member under "Unreachable", apart from those who
  have not answered.

Reminders only go to pending prompts, so an unreachable member gets none; the channel nudge names
only the pending ones too.

A DM is known to be a standup's by what it carries: the prompt and the reminder both have the
prompt's "Answer" button (``standup-answer:<prompt id>``), and the prompt's member must be the
DM's recipient. The outbox row keeps the payload, so nothing more has to be stored to find it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Actions, Bold, Button, Code, Message, Plain, Text, message, text
from bot.chat import Context as Note
from bot.core import Core
from bot.delivery.outbox import decode_message, enqueue
from bot.delivery.worker import DeadLetter, DeliveryWorker
from bot.features.standups import refresher, report
from bot.features.standups.prompts import ANSWER_ACTION, dm_target
from bot.features.standups.report import day_label
from bot.port import Method
from storage.models import (
    Member,
    OutboxMessage,
    PromptStatus,
    Standup,
    StandupPrompt,
    StandupRun,
)

log = logging.getLogger(__name__)

_ANSWER_PREFIX = f"{ANSWER_ACTION}:"


def prompt_id_of(msg: Message) -> int | None:
    """The standup prompt a DM is about: the id in its "Answer" button, if it has one."""
    for block in msg.blocks:
        if not isinstance(block, Actions):
            continue
        for element in block.elements:
            if isinstance(element, Button) and element.action_id.startswith(_ANSWER_PREFIX):
                raw = element.action_id[len(_ANSWER_PREFIX) :]
                return int(raw) if raw.isdigit() else None
    return None


def owner_key(standup: Standup, run: StandupRun, member: Member) -> str:
    return f"standup:{standup.id}:run:{run.id}:unreachable:{member.id}:owner"


def owner_notice(standup: Standup, run: StandupRun, member: Member, error: str) -> Message:
    """The DM to the owner. Names are Plain (user text; no mention pings the member)."""
    name = member.display_name or member.platform_user_id
    detail = error.split(": ", 1)[1] if ": " in error else error
    said: Text = text("The platform said: ", Plain(detail))
    return message(
        text(
            "I can't DM ",
            Plain(f"@{name}"),
            " (their DMs are closed or their account is inactive): they are shown as "
            "unreachable in ",
            Bold(standup.name),
            f" ({day_label(run.run_date)}).",
        ),
        Note(
            text(
                "Fix: ask them to allow direct messages from syncup (or to reactivate their "
                "account), or take them out with ",
                Code(f"/standup edit {standup.name}"),
                ".",
            )
        ),
        Note(said),
        summary=f"{standup.name}: I can't DM @{name}",
    )


async def mark_unreachable(session: AsyncSession, dead: DeadLetter, now: datetime) -> int | None:
    """Act on one dead-lettered DM in the caller's transaction; returns the run whose report
    is now out of date, or None when the DM was no standup's or the prompt was not pending."""
    payload = await session.scalar(
        select(OutboxMessage.payload).where(OutboxMessage.id == dead.outbox_id)
    )
    if payload is None:
        return None
    try:
        prompt_id = prompt_id_of(decode_message(payload))
    except ValidationError:
        return None
    if prompt_id is None:
        return None
    found = (
        await session.execute(
            select(StandupPrompt, StandupRun, Standup, Member)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .join(Member, Member.id == StandupPrompt.member_id)
            .where(StandupPrompt.id == prompt_id)
        )
    ).first()
    if found is None:
        return None
    prompt, run, standup, member = found
    recipient = dead.target.user_id
    if standup.workspace_id != dead.workspace_id or (
        recipient is not None and recipient != member.platform_user_id
    ):
        log.warning(
            "outbox %d: the DM names standup prompt %d of someone else; ignored",
            dead.outbox_id,
            prompt_id,
        )
        return None
    # Only a pending prompt: an answer or a skip recorded meanwhile stands.
    changed = await session.execute(
        update(StandupPrompt)
        .where(StandupPrompt.id == prompt.id, StandupPrompt.status == PromptStatus.PENDING)
        .values(status=PromptStatus.UNREACHABLE, step=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:
        return None
    log.info(
        "standup %s: @%s is unreachable on %s (%s)",
        standup.id,
        member.platform_user_id,
        run.run_date,
        dead.error,
    )
    owner = await session.get(Member, standup.owner_id) if standup.owner_id else None
    if owner is not None and owner.id != member.id:
        await enqueue(
            session,
            workspace_id=standup.workspace_id,
            method=Method.DM,
            target=dm_target(owner),
            message=owner_notice(standup, run, member, dead.error),
            key=owner_key(standup, run, member),
            now=now,
        )
    await report.mark_dirty(session, run.id, now, prompt.id)  # last: see its docstring
    return run.id


class UnreachableMembers:
    """The worker's dead-letter callback for standups."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def on_dead_letter(self, dead: DeadLetter) -> None:
        if not dead.unreachable or dead.method is not Method.DM:
            return
        now = self.core.clock.now()
        async with self.core.db.transaction() as session:
            run_id = await mark_unreachable(session, dead, now)
        if run_id is None:
            return
        reports = refresher.refresher_of(self.core)
        if reports is not None:
            reports.poke(run_id)
        for wake in self.core.on_outbox:
            wake()  # the owner's DM


def register(core: Core, worker: DeliveryWorker) -> UnreachableMembers:
    """Have ``worker`` tell standups about members it cannot DM."""
    handler = UnreachableMembers(core)
    worker.on_dead_letter.append(handler.on_dead_letter)
    return handler
