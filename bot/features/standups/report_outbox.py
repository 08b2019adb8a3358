"""Queueing a report's messages: each posted once under a stable base key, then updated as
``<base>:v<n>`` only when what it shows changed (see ``report.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    MESSAGE_ADAPTER,
    Message,
)
from bot.delivery.outbox import WRITE_SLICE, Outgoing, enqueue, enqueue_many
from bot.features.standups.roster import PromptState
from bot.port import Method, Target
from storage.models import (
    OutboxMessage,
    Standup,
    StandupRun,
)


def report_key(standup: Standup, run: StandupRun) -> str:
    return f"standup:{standup.id}:run:{run.id}:report"


async def _original_id(session: AsyncSession, base: str) -> int | None:
    return await session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == base)
    )


def _version_key(base: str, version: int) -> str:
    return base if version == 0 else f"{base}:v{version}"


async def _payload_of(session: AsyncSession, key: str) -> dict[str, Any] | None:
    return await session.scalar(
        select(OutboxMessage.payload).where(OutboxMessage.idempotency_key == key)
    )


async def _latest_by_prefix(session: AsyncSession, base: str) -> tuple[dict[str, Any] | None, int]:
    """For messages without a version column of their own (per-question replies): the payload
    last queued under ``base`` and how many updates it has had."""
    rows = (
        await session.execute(
            select(OutboxMessage.payload)
            .where(
                or_(
                    OutboxMessage.idempotency_key == base,
                    OutboxMessage.idempotency_key.like(f"{base}:v%"),
                )
            )
            .order_by(OutboxMessage.id)
        )
    ).all()
    if not rows:
        return None, 0
    return rows[-1][0], len(rows) - 1


@dataclass
class Publisher:
    session: AsyncSession
    workspace_id: int
    channel_id: str
    now: datetime
    sent: bool = False

    async def publish(
        self,
        base: str,
        msg: Message,
        *,
        original: int | None,
        version: int | None,
        thread_of: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> tuple[int, int]:
        """Post ``msg`` under ``base`` if it never was, else update it if it changed since the
        last version queued. ``version`` is the message's update count when it is kept in a
        column (its last payload is then one exact-key lookup), None to look it up by prefix.
        Returns the original's outbox id and the new version (0 = never updated)."""
        if payload is None:
            payload = MESSAGE_ADAPTER.dump_python(msg, mode="json")
        if original is None:
            original = await _original_id(self.session, base)
        if original is None:
            self.sent = True
            new_id = await enqueue(
                self.session,
                workspace_id=self.workspace_id,
                method=Method.POST,
                target=Target(channel_id=self.channel_id),
                message=msg,
                key=base,
                now=self.now,
                depends_on=thread_of,
                payload=payload,
            )
            return new_id, 0
        if version is None:
            last, version = await _latest_by_prefix(self.session, base)
        else:
            last = await _payload_of(self.session, _version_key(base, version))
        if last == payload:
            return original, version
        version += 1
        self.sent = True
        await enqueue(
            self.session,
            workspace_id=self.workspace_id,
            method=Method.UPDATE,
            target=Target(channel_id=self.channel_id),
            message=msg,
            key=_version_key(base, version),
            now=self.now,
            depends_on=original,
            payload=payload,
        )
        return original, version

    async def publish_people(
        self, replies: Sequence[Reply], thread_of: int | None
    ) -> list[dict[str, Any]]:
        """:meth:`publish` for the per-person replies, in a few statements for all of them
        (their outbox id and version are on their prompts). Returns the prompts' new values."""
        changes: list[dict[str, Any]] = []
        fresh = [r for r in replies if r.prompt is not None and r.prompt.report_outbox_id is None]
        known = [r for r in replies if r.prompt is not None and r.prompt.report_outbox_id]
        target = Target(channel_id=self.channel_id)
        if fresh:
            ids, new = await enqueue_many(
                self.session,
                [
                    Outgoing(
                        self.workspace_id,
                        Method.POST,
                        target,
                        r.message,
                        r.base,
                        thread_of,
                        r.payload,
                    )
                    for r in fresh
                ],
                self.now,
            )
            self.sent = self.sent or bool(new)
            for r in fresh:
                assert r.prompt is not None
                if r.base in new:
                    changes.append(_prompt_change(r.prompt, ids[r.base], 0))
                else:  # queued before, its id not kept (a refresh that died): the slow way
                    outbox_id, version = await self.publish(
                        r.base,
                        r.message,
                        original=None,
                        version=None,
                        thread_of=thread_of,
                        payload=r.payload,
                    )
                    changes.append(_prompt_change(r.prompt, outbox_id, version))
        if known:
            last_key = {
                _version_key(r.base, r.prompt.report_version): r
                for r in known
                if r.prompt is not None
            }
            last: dict[str, Any] = {}
            keys = list(last_key)
            for start in range(0, len(keys), WRITE_SLICE):  # payloads: JSON to decode
                rows = await self.session.execute(
                    select(OutboxMessage.idempotency_key, OutboxMessage.payload).where(
                        OutboxMessage.idempotency_key.in_(keys[start : start + WRITE_SLICE])
                    )
                )
                last.update(dict(rows.tuples().all()))
            updates: list[Outgoing] = []
            for key, r in last_key.items():
                assert r.prompt is not None
                if last.get(key) == r.payload:
                    continue
                version = r.prompt.report_version + 1
                updates.append(
                    Outgoing(
                        self.workspace_id,
                        Method.UPDATE,
                        target,
                        r.message,
                        _version_key(r.base, version),
                        r.prompt.report_outbox_id,
                        r.payload,
                    )
                )
                changes.append(_prompt_change(r.prompt, r.prompt.report_outbox_id, version))
            if updates:
                await enqueue_many(self.session, updates, self.now)
                self.sent = True
        return changes


def _prompt_change(prompt: PromptState, outbox_id: int | None, version: int) -> dict[str, Any]:
    prompt.report_outbox_id, prompt.report_version = outbox_id, version
    return {"id": prompt.id, "report_outbox_id": outbox_id, "report_version": version}


@dataclass
class Reply:
    """A reply in the report's thread, rendered: a person's (``prompt`` holds its outbox id and
    version) or a question's (``prompt`` None: looked up by key prefix)."""

    base: str
    message: Message
    prompt: PromptState | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.payload:
            self.payload = MESSAGE_ADAPTER.dump_python(self.message, mode="json")


@dataclass
class Rendered:
    parent: Message
    replies: list[Reply]
    parent_payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.parent_payload:
            self.parent_payload = MESSAGE_ADAPTER.dump_python(self.parent, mode="json")
