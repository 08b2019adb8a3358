"""Rows that end dead, and the callbacks told about them.

A row that ends dead (a permanent refusal, ``max_attempts`` failures, a dead parent, a payload
that no longer decodes) is reported to the worker's ``on_dead_letter`` callbacks once its state
is committed, as a :class:`DeadLetter`; ``unreachable`` says the platform refused because the
member cannot be messaged at all (:class:`~bot.port.RecipientUnreachable`), which features act on
(a standup marks the member unreachable). A callback's error is logged, never the worker's
problem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.port import DeliveryError, Method, Target
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000
# A dead-letter callback that takes longer than this is given up on (and logged): it runs in
# the bucket's drain, and a hung one must not stop the bucket.
DEAD_LETTER_CALLBACK_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetter:
    """An outbox row that ended dead, as told to ``DeliveryWorker.on_dead_letter``."""

    outbox_id: int
    idempotency_key: str
    workspace_id: int  # ours (``workspaces.id``)
    platform_workspace_id: str  # the platform's
    method: Method
    target: Target
    error: str  # as kept on the row: "RecipientUnreachable: ..."
    # The platform said the member cannot be messaged at all (closed DMs, deactivated account).
    unreachable: bool = False


DeadLetterCallback = Callable[[DeadLetter], Awaitable[None]]


def mark_dead(msg: OutboxMessage, error: str) -> None:
    msg.status = OutboxStatus.DEAD
    msg.last_error = error[:MAX_ERROR_CHARS]
    msg.lease_until = None
    msg.leased_by = None


def describe(exc: BaseException) -> str:
    """The error kept on the row and logged: its type and message, never the payload."""
    detail = exc.message if isinstance(exc, DeliveryError) else str(exc)
    return f"{type(exc).__name__}: {detail}"[:MAX_ERROR_CHARS]


async def tell(callbacks: Sequence[DeadLetterCallback], dead: DeadLetter) -> None:
    """Run the dead-letter callbacks, one after the other; their errors are only logged."""
    for callback in callbacks:
        try:
            async with asyncio.timeout(DEAD_LETTER_CALLBACK_SECONDS):
                await callback(dead)
        except Exception:
            log.exception(
                "outbox %d (%s): a dead-letter callback failed", dead.outbox_id, dead.error
            )
